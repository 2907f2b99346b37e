"""Rules every rendered manifest must keep: hardened pods from the one image, default-deny networks,
waves in order, Applications pointing at folders that render, no committed secret data, and a
domain folder for every service and worker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.registry import SERVICES
from tests.deploy import chains, manifests
from tests.deploy.manifests import ENVIRONMENTS, ROOT

pytestmark = pytest.mark.infra

# The wave table of the deployment design (docs/deployment.md): wave -> Application file stem.
WAVES = {
    2: "namespaces",
    3: "rbac-storage",
    4: "aws-ebs-csi-driver",
    5: "metrics-server",
    6: "network-policies",
    8: "kube-prometheus-stack",
    9: "grafana",
    10: "external-secrets-operator",
    11: "external-secrets",
    15: "aws-load-balancer-controller",
    16: "external-dns",
    24: "cloudnative-pg",
    26: "rabbitmq-cluster-operator",
    28: "redis-operator",
    35: "data",
    60: "domains",
    70: "ingress",
}
SSM_KEY = re.compile(r"^/eco2/(dev|prod)/[a-z0-9-]+/[a-z0-9-]+$")  # terraform/modules/ssm-parameters naming


def docs(rendered: dict[str, Any], path: str) -> list[dict[str, Any]]:
    value = rendered[path]
    if isinstance(value, Exception):
        raise value
    return value


def of_kind(rendered: dict[str, Any], path: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in docs(rendered, path) if d["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def workload_paths() -> list[str]:
    return [f"workloads/domains/{d}/{layer}" for d in manifests.domain_folders() for layer in ("base", *ENVIRONMENTS)]


# --- domain folders -------------------------------------------------------------------------------


def test_domain_folders_are_exactly_what_the_registry_deploys() -> None:
    """services/registry.py -> one folder per Deployment (scaffold_domain.deployments): no service
    or worker without its folder, no folder the registry does not explain."""
    folders, expected = set(manifests.domain_folders()), set(manifests.deployed_folders())
    assert not expected - folders, (
        f"registered but not deployed (scripts/deployment/scaffold_domain.py service <name>): {sorted(expected - folders)}"
    )
    assert not folders - expected, f"deployed but not in services/registry.py: {sorted(folders - expected)}"


@pytest.mark.parametrize("folder", manifests.domain_folders())
def test_domain_folder_shape(rendered: dict[str, Any], folder: str) -> None:
    expected_args = list(manifests.deployed_folders()[folder])
    is_api = expected_args[0] == "serve"
    for env in ENVIRONMENTS:
        path = f"workloads/domains/{folder}/{env}"
        kinds = {d["kind"] for d in docs(rendered, path)}
        required = {"Deployment", "ServiceAccount", "ConfigMap", "PodDisruptionBudget"}
        if is_api:
            required |= {"Service", "HorizontalPodAutoscaler", "ServiceMonitor", "Job"}
        assert required <= kinds, f"{path} lacks {required - kinds}"
        (deployment,) = of_kind(rendered, path, "Deployment")
        (container,) = pod_spec(deployment)["containers"]
        assert container["args"] == expected_args
        if is_api:
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            (service,) = of_kind(rendered, path, "Service")
            assert service["spec"]["type"] == "NodePort"
            (job,) = of_kind(rendered, path, "Job")
            assert pod_spec(job)["containers"][0]["args"] == ["migrate", folder]
            annotations = job["metadata"]["annotations"]
            assert annotations["argocd.argoproj.io/hook"] in {"PreSync", "Sync"}
            # Migrations before the API pods: an earlier wave than the Deployment.
            assert int(annotations["argocd.argoproj.io/sync-wave"]) < int(
                deployment["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            )
        for obj in of_kind(rendered, path, "HorizontalPodAutoscaler"):
            assert obj["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        labels = pod_spec(deployment) and deployment["spec"]["template"]["metadata"]["labels"]
        for pdb in of_kind(rendered, path, "PodDisruptionBudget"):
            assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("path", workload_paths())
def test_pods_are_hardened_and_run_the_one_image(rendered: dict[str, Any], path: str) -> None:
    overlay = not path.endswith("/base")
    for obj in docs(rendered, path):
        if obj["kind"] not in {"Deployment", "Job"}:
            continue
        name = f"{path}: {obj['kind']}/{obj['metadata']['name']}"
        spec = pod_spec(obj)
        assert spec["automountServiceAccountToken"] is False, name
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] >= 10000, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp, f"{name}: no /tmp volume"
        assert "emptyDir" in tmp[0], f"{name}: no emptyDir for /tmp"
        for container in spec["containers"]:
            image = container["image"]
            if overlay:
                assert image.startswith(manifests.IMAGE_REPOSITORY + ":"), f"{name}: {image} is not the one image"
                assert not image.endswith(":latest"), name
            else:
                assert image == "eco2", f"{name}: bases use the kustomize image name 'eco2'"
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc.get("privileged"), name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{name}: {bound}"
            assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"], name
            sources = {next(iter(s)) for s in container["envFrom"]}
            assert sources == {"configMapRef", "secretRef"}, f"{name}: config from a ConfigMap, secrets from a Secret"


@pytest.mark.parametrize("folder", manifests.domain_folders())
def test_overlays_change_only_tag_replicas_config_and_node_selectors(folder: str) -> None:
    allowed_paths = {"/spec/template/spec/nodeSelector", "/spec/minReplicas", "/spec/maxReplicas", "/spec/replicas"}
    for env in ENVIRONMENTS:
        kustomization = yaml.safe_load((ROOT / f"workloads/domains/{folder}/{env}/kustomization.yaml").read_text())
        assert set(kustomization) <= {"apiVersion", "kind", "resources", "images", "configMapGenerator", "patches"}
        assert kustomization["resources"] == ["../base"]
        assert [i["name"] for i in kustomization["images"]] == ["eco2"]
        for generator in kustomization.get("configMapGenerator", []):
            assert generator["behavior"] == "merge"
        for patch in kustomization.get("patches", []):
            assert "path" not in patch, "inline patches keep an overlay readable in one file"
            for op in yaml.safe_load(patch["patch"]):
                assert op["path"] in allowed_paths, f"{folder}/{env}: overlay patches {op['path']}"


# --- namespaces and network policies ----------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_domain_namespace_has_default_deny(rendered: dict[str, Any], env: str) -> None:
    namespaces = {
        n["metadata"]["name"]
        for n in of_kind(rendered, f"workloads/namespaces/{env}", "Namespace")
        if n["metadata"]["labels"].get("eco2.io/tier") == "domain"
    }
    assert {"auth", "my", "image", "scan", "character", "location", "events"} <= namespaces
    policies = of_kind(rendered, f"workloads/network-policies/{env}", "NetworkPolicy")
    denied = {
        p["metadata"]["namespace"]
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    }
    assert namespaces <= denied, f"no default-deny in {namespaces - denied}"
    # Every workload lives in a domain namespace.
    for folder in manifests.domain_folders():
        for obj in docs(rendered, f"workloads/domains/{folder}/{env}"):
            assert obj["metadata"]["namespace"] in namespaces, f"{folder}: {obj['kind']} outside a domain namespace"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_nothing_calls_character_internally(rendered: dict[str, Any], env: str) -> None:
    """The reward is decided in scan's own transaction: no policy opens character to scan any more."""
    names = {p["metadata"]["name"] for p in of_kind(rendered, f"workloads/network-policies/{env}", "NetworkPolicy")}
    assert not names & {"allow-rewards-from-scan", "allow-character-rewards"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_load_balancer_source_is_the_environment_vpc(rendered: dict[str, Any], env: str) -> None:
    vpc = {"dev": "10.20.0.0/16", "prod": "10.30.0.0/16"}[env]  # terraform/env/<env>.tfvars vpc_cidr
    for p in of_kind(rendered, f"workloads/network-policies/{env}", "NetworkPolicy"):
        if p["metadata"]["name"] == "allow-from-load-balancer":
            assert p["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": vpc}}]


# --- ingress ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ingress_routes_only_public_prefixes_over_https(rendered: dict[str, Any], env: str) -> None:
    ingresses = of_kind(rendered, f"workloads/ingress/{env}", "Ingress")
    routed: dict[str, str] = {}
    for ing in ingresses:
        annotations = ing["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/group.name"] == "eco2"
        assert yaml.safe_load(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTPS": 443}]
        assert annotations["alb.ingress.kubernetes.io/backend-protocol"] == "HTTP"
        assert annotations["alb.ingress.kubernetes.io/target-type"] == "instance"
        idle = re.search(
            r"idle_timeout\.timeout_seconds=(\d+)", annotations["alb.ingress.kubernetes.io/load-balancer-attributes"]
        )
        assert idle, "no ALB idle timeout"
        assert int(idle.group(1)) >= 600, "SSE streams need a long ALB idle timeout"
        host = annotations["external-dns.alpha.kubernetes.io/hostname"]
        assert host == f"api.{env}.eco2.example.com"
        for rule in ing["spec"]["rules"]:
            assert rule["host"] == host
            for path in rule["http"]["paths"]:
                assert path["pathType"] == "Prefix"
                assert path["path"].startswith("/api/v1/"), f"{path['path']} is not a public prefix"
                routed[path["path"]] = path["backend"]["service"]["name"]
                assert path["backend"]["service"]["name"] == ing["metadata"]["namespace"]
    assert routed == {entry.prefix: name for name, entry in SERVICES.items()}
    assert not any(p.startswith("/internal") for p in routed)


# --- secrets ---------------------------------------------------------------------------------------


def test_no_secret_with_data_is_committed(rendered: dict[str, Any]) -> None:
    for path in rendered:
        for obj in docs(rendered, path):
            if obj["kind"] == "Secret":
                assert not obj.get("data"), f"{path}: Secret {obj['metadata']['name']}"
                assert not obj.get("stringData"), f"{path}: Secret {obj['metadata']['name']}"
    for tree in manifests.TREES:
        for file in (ROOT / tree).rglob("*.y*ml"):
            for obj in manifests.load_yaml_docs(file):
                if isinstance(obj, dict) and obj.get("kind") == "Secret":
                    assert not obj.get("data"), f"{file}: a Secret with data"
                    assert not obj.get("stringData"), f"{file}: a Secret with data"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_external_secrets_map_ssm_parameters(rendered: dict[str, Any], env: str) -> None:
    path = f"workloads/secrets/external-secrets/{env}"
    stores = of_kind(rendered, path, "ClusterSecretStore")
    assert [s["spec"]["provider"]["aws"]["service"] for s in stores] == ["ParameterStore"]
    externals = of_kind(rendered, path, "ExternalSecret")
    for es in externals:
        assert es["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "aws-ssm"}
        for item in es["spec"]["data"]:
            key = item["remoteRef"]["key"]
            assert SSM_KEY.match(key), key
            assert key.startswith(f"/eco2/{env}/"), key
    targets = {(es["metadata"]["namespace"], es["spec"]["target"]["name"]) for es in externals}
    # ClusterExternalSecrets: the same Secret in every namespace their selectors match.
    namespaces = of_kind(rendered, f"workloads/namespaces/{env}", "Namespace")
    for ces in of_kind(rendered, path, "ClusterExternalSecret"):
        for selector in ces["spec"]["namespaceSelectors"]:
            for ns in namespaces:
                if selector["matchLabels"].items() <= ns["metadata"].get("labels", {}).items():
                    targets.add((ns["metadata"]["name"], ces["spec"]["externalSecretName"]))
    # Every secret a workload reads exists, and every domain namespace can pull the image.
    for folder in manifests.domain_folders():
        for obj in docs(rendered, f"workloads/domains/{folder}/{env}"):
            if obj["kind"] in {"Deployment", "Job"}:
                ns = obj["metadata"]["namespace"]
                for source in pod_spec(obj)["containers"][0]["envFrom"]:
                    if "secretRef" in source:
                        assert (ns, source["secretRef"]["name"]) in targets, f"{folder}: no ExternalSecret"
                for volume in pod_spec(obj)["volumes"]:
                    if "secret" in volume:
                        assert (ns, volume["secret"]["secretName"]) in targets
                assert (ns, "registry-credentials") in targets
    # The PostgreSQL roles' passwords exist for the data cluster.
    cluster = next(o for o in docs(rendered, f"platform/cr/{env}") if o["kind"] == "Cluster")
    for role in cluster["spec"]["managed"]["roles"]:
        assert ("postgres", role["passwordSecret"]["name"]) in targets


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_irsa_service_accounts_match_terraform(rendered: dict[str, Any], env: str) -> None:
    accounts = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]): sa["metadata"].get("annotations", {})
        for sa in of_kind(rendered, f"workloads/rbac-storage/{env}", "ServiceAccount")
    }
    for folder in manifests.domain_folders():  # each domain Deployment's own service account
        for sa in of_kind(rendered, f"workloads/domains/{folder}/{env}", "ServiceAccount"):
            accounts[(sa["metadata"]["namespace"], sa["metadata"]["name"])] = {}
    # CloudNativePG runs a Cluster's pods as a service account named after the Cluster.
    clusters = [*docs(rendered, f"platform/cr/{env}"), *docs(rendered, "platform/cr/recovery")]
    accounts.update(
        {(c["metadata"]["namespace"], c["metadata"]["name"]): {} for c in clusters if c["kind"] == "Cluster"}
    )
    for account in (a for accounts in chains.irsa_trust().values() for a in accounts):
        key = tuple(account.split("/"))
        assert key in accounts, f"Terraform trusts {account}, which no manifest creates"
        role = accounts[key].get("eks.amazonaws.com/role-arn")
        assert role is None or re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/eco2-{env}-[a-z-]+", role), role
    classes = of_kind(rendered, f"workloads/rbac-storage/{env}", "StorageClass")
    assert [(c["metadata"]["name"], c["provisioner"], c["parameters"]["type"]) for c in classes] == [
        ("gp3", "ebs.csi.aws.com", "gp3")
    ]


# --- Argo CD ---------------------------------------------------------------------------------------


def applications(env: str) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for file in sorted((ROOT / f"clusters/{env}/apps").glob("[0-9][0-9]-*.yaml")):
        (doc,) = manifests.load_yaml_docs(file)
        found.append((file, doc))
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_waves_match_the_table_and_are_strictly_ordered(env: str) -> None:
    apps = applications(env)
    waves = []
    for file, doc in apps:
        number, stem = file.stem.split("-", 1)
        wave = int(doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        assert wave == int(number), f"{file.name}: annotation says wave {wave}"
        assert WAVES.get(wave) == stem, f"{file.name}: wave {wave} should be {WAVES.get(wave)}"
        waves.append(wave)
    assert waves == sorted(set(waves)) == sorted(WAVES), "one Application per wave, strictly increasing"
    listed = yaml.safe_load((ROOT / f"clusters/{env}/apps/kustomization.yaml").read_text())["resources"]
    assert listed == [file.name for file, _ in apps]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_applications_point_at_folders_that_render(rendered: dict[str, Any], env: str) -> None:
    (root,) = of_kind(rendered, f"clusters/{env}/bootstrap", "Application")
    assert root["spec"]["source"]["path"] == f"clusters/{env}/apps"
    for file, doc in [(ROOT / f"clusters/{env}/bootstrap/root-app.yaml", root), *applications(env)]:
        if doc["kind"] == "ApplicationSet":
            template = doc["spec"]["template"]
            spec = template["spec"]
            assert "resources-finalizer.argocd.argoproj.io" in template["metadata"]["finalizers"]
            (generator,) = doc["spec"]["generators"]
            (pattern,) = [d["path"] for d in generator["git"]["directories"]]
            assert pattern == f"workloads/domains/*/{env}"
            matched = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern))
            assert matched == sorted(f"workloads/domains/{f}/{env}" for f in manifests.domain_folders())
            for path in matched:
                assert docs(rendered, path)
        else:
            spec = doc["spec"]
            assert "resources-finalizer.argocd.argoproj.io" in doc["metadata"]["finalizers"], file.name
            for source in spec.get("sources") or [spec["source"]]:
                if "chart" in source:
                    assert re.fullmatch(r"\d+\.\d+\.\d+", source["targetRevision"]), f"{file.name}: chart not pinned"
                    # The chart installs its own CRDs (no hand-written copies): never skip them.
                    assert not source["helm"].get("skipCrds"), f"{file.name}: the chart's CRDs must be installed"
                else:
                    assert (ROOT / source["path"]).is_dir(), f"{file.name}: {source['path']} does not exist"
                    if not manifests.remote_resources(ROOT / source["path"]):
                        assert docs(rendered, source["path"]), f"{file.name}: {source['path']} renders nothing"
        policy = spec["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}, file.name
        if file.name != "root-app.yaml" and doc["kind"] == "Application":
            assert "CreateNamespace=true" in policy["syncOptions"], file.name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_application_health_customisation_gates_waves(rendered: dict[str, Any], env: str) -> None:
    (cm,) = of_kind(rendered, f"clusters/{env}/bootstrap", "ConfigMap")
    assert cm["metadata"] == {**cm["metadata"], "name": "argocd-cm", "namespace": "argocd"}
    lua = cm["data"]["resource.customizations.health.argoproj.io_Application"]
    assert "obj.status.health.status" in lua
