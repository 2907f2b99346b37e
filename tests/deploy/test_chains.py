"""Chain tests: every link a real deployment depends on, derived from the rendered overlays, the
code's settings classes and Terraform, never restated (docs/deployment.md, "How this is tested")."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from services.registry import SERVICES
from tests.deploy import chains, manifests
from tests.deploy.manifests import ENVIRONMENTS, ROOT

pytestmark = pytest.mark.infra
scaffold = manifests.scaffold()

# CommonSettings fields whose None selects an in-process adapter (services/common/config.py): a
# production pod without one would run alone on SQLite / process memory without failing.
EMBEDDED_FALLBACKS = {"DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"}


def owner(process: chains.Process) -> Any:
    """The registry entry a process runs (``serve``/``migrate``/``worker consumers`` name it, a
    ``worker <command>`` is the entry declaring that worker); None for the relay."""
    match process.args:
        case ["serve" | "migrate", name] | ["worker", "consumers", name]:
            return SERVICES[name]
        case ["worker", command]:
            return next((e for e in SERVICES.values() if command in e.workers), None)
    return None


def needs(process: chains.Process) -> set[str]:
    """The embedded fallbacks a process must not use: the bus only where its service publishes or
    consumes (an outbox or consumers; scan's job queue goes with its outbox), and always for the relay."""
    entry = owner(process)
    uses_bus = entry is None or entry.uses_broker
    return EMBEDDED_FALLBACKS if uses_bus else EMBEDDED_FALLBACKS - {"RABBITMQ_URL"}


@pytest.fixture(scope="module")
def procs(rendered: dict[str, Any]) -> dict[str, list[chains.Process]]:
    return {env: chains.processes(rendered, env) for env in ENVIRONMENTS}


# --- (a) secrets: ExternalSecrets <-> Terraform's SSM parameters ------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_external_secret_keys_are_exactly_terraforms_parameters(rendered: dict[str, Any], env: str) -> None:
    read = chains.remote_keys(rendered, env)
    created = chains.terraform_parameters(env)
    assert read - created == set(), f"{env}: ExternalSecrets read parameters Terraform never creates"
    assert created - read == set(), f"{env}: Terraform creates parameters nothing reads"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_secret_a_pod_or_a_data_store_reads_is_created(rendered: dict[str, Any], env: str) -> None:
    made = set(chains.secrets(rendered, env))
    for cr in chains.docs(rendered, f"platform/cr/{env}"):
        spec, ns = cr.get("spec", {}), cr["metadata"]["namespace"]
        wanted = [r["passwordSecret"]["name"] for r in spec.get("managed", {}).get("roles", [])]
        wanted += [spec["kubernetesConfig"]["redisSecret"]["name"]] if "kubernetesConfig" in spec else []
        wanted += [spec["secretBackend"]["externalSecret"]["name"]] if "secretBackend" in spec else []
        for name in wanted:
            assert (ns, name) in made, f"{cr['kind']}/{cr['metadata']['name']} needs Secret {ns}/{name}"


# --- (b) settings: what a pod sets is what the code reads, and production has what it needs --------


def _reads(process: chains.Process) -> dict[str, list[str]]:
    return chains.settings_read(tuple(chains.entry_modules(process.args)))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_variable_a_pod_sets_is_read_by_its_settings(procs: dict[str, list[chains.Process]], env: str) -> None:
    problems = []
    for process in procs[env]:
        known = {name for names in _reads(process).values() for name in names} | chains.sdk_variables()
        unknown = sorted(set(process.env) - known)
        if unknown:
            problems.append(f"{process.label} ({' '.join(process.args)}): {unknown} read by no settings class")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_setting_production_requires_is_provided(procs: dict[str, list[chains.Process]], env: str) -> None:
    problems = []
    jobs = [(sorted(_reads(process)), process.env) for process in procs[env]]
    for process, errors in zip(procs[env], chains.settings_errors(jobs), strict=True):
        assert process.env.get("ENVIRONMENT") == "production", f"{process.label}: not a production pod"
        missing = sorted(v for v in needs(process) if not process.env.get(v))
        if process.args[0] == "serve" and scaffold.uses_jwks(owner(process)) and not process.env.get("JWKS_URL"):
            missing.append("JWKS_URL")
        if missing:
            problems.append(f"{process.label}: {missing} unset (would fall back to an embedded adapter)")
        problems += [f"{process.label}: {cls}: {error}" for cls, error in errors.items()]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_broker_and_jwks_only_where_the_registry_entry_uses_them(
    rendered: dict[str, Any], procs: dict[str, list[chains.Process]], env: str
) -> None:
    """Least privilege, derived like the scaffold does: RABBITMQ_URL and the broker egress only for a
    service with an outbox or consumers; JWKS_URL and the JWKS egress only for an API with routes
    that verify a user's token. A service that needs neither gets neither."""
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in chains.docs(rendered, f"workloads/network-policies/{env}")
        if p["kind"] == "NetworkPolicy"
    }
    problems = []
    for process in procs[env]:
        entry = owner(process)
        if entry is None:
            continue
        broker = entry.uses_broker
        if bool(process.env.get("RABBITMQ_URL")) != broker:
            problems.append(f"{process.label}: RABBITMQ_URL {'missing' if broker else 'given'}")
        if process.args[0] == "serve":
            jwks = scaffold.uses_jwks(entry)
            if bool(process.env.get("JWKS_URL")) != jwks:
                problems.append(f"{process.label}: JWKS_URL {'missing' if jwks else 'given'}")
    for name, entry in SERVICES.items():
        for policy, used in (("allow-rabbitmq", entry.uses_broker), ("allow-jwks", scaffold.uses_jwks(entry))):
            if ((name, policy) in policies) != used:
                problems.append(f"{name}: NetworkPolicy {policy} {'missing' if used else 'not needed'}")
    assert not problems, "\n".join(problems)


def test_terraforms_placeholder_is_refused_in_production() -> None:
    """Until an operator sets a parameter, External Secrets hands the pods Terraform's placeholder:
    the production guard must refuse it rather than start with it."""
    from services.common.config import Environment, refuse_placeholder

    module = (ROOT / "terraform/modules/ssm-parameters/main.tf").read_text()
    (placeholder,) = re.findall(r'^\s*value\s*=.*"([^"]+)"\s*$', module, re.M)
    with pytest.raises(ValueError, match="must be set to a real secret"):
        refuse_placeholder(Environment.PRODUCTION, "a secret", placeholder)


def test_embedded_fallbacks_are_common_settings() -> None:
    from services.common.config import CommonSettings

    fields = {name.upper() for name in CommonSettings.model_fields}
    assert fields >= EMBEDDED_FALLBACKS


# --- (c) network: every host:port a pod calls is a Service, and policies let the call through ------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_call_reaches_a_service_through_the_policies(
    rendered: dict[str, Any], procs: dict[str, list[chains.Process]], env: str
) -> None:
    services = chains.cluster_services(rendered, env)
    ns_labels = chains.namespace_labels(rendered, env)
    policies = [p for p in chains.docs(rendered, f"workloads/network-policies/{env}") if p["kind"] == "NetworkPolicy"]
    problems = []
    for process in procs[env]:
        src_labels = process.labels
        for variable, host, port in chains.calls(process):
            where = f"{process.label}: {variable} -> {host}:{port}"
            if host.endswith(".svc.cluster.local"):
                target = services.get((host, port))
                if target is None:
                    problems.append(f"{where}: no such Service/port in the manifests")
                    continue
                dst_labels = dict(target.pod_labels)
                if not chains.policy_allows(
                    policies,
                    "egress",
                    process.namespace,
                    src_labels,
                    ns_labels[target.namespace],
                    dst_labels,
                    target.port,
                ):
                    problems.append(f"{where}: no egress policy of {process.namespace} allows it")
                if not chains.policy_allows(
                    policies,
                    "ingress",
                    target.namespace,
                    dst_labels,
                    ns_labels[process.namespace],
                    src_labels,
                    target.port,
                ):
                    problems.append(f"{where}: no ingress policy of {target.namespace} allows it")
            else:
                assert "." in host, f"{where}: a short host name only resolves inside one namespace"
                if not chains.policy_allows(
                    policies, "egress", process.namespace, src_labels, None, {}, port, external=True
                ):
                    problems.append(f"{where}: no egress policy of {process.namespace} allows the internet on {port}")
        dns = {"kubernetes.io/metadata.name": "kube-system"}
        if not chains.policy_allows(
            policies, "egress", process.namespace, src_labels, dns, {"k8s-app": "kube-dns"}, 53
        ):
            problems.append(f"{process.label}: cannot resolve names (DNS egress)")
    assert not problems, "\n".join(problems)


def test_scan_calls_image_inside_the_cluster(procs: dict[str, list[chains.Process]]) -> None:
    """Not through the public URL (the ingress does not route /internal). The reward needs no call:
    scan decides it in its own transaction (docs/scan.md)."""
    for process in procs["prod"]:
        if process.args in (["serve", "scan"], ["worker", "scan"]):
            assert process.env["SCAN_IMAGE_SERVICE_URL"].endswith(".svc.cluster.local"), process.label
            assert "SCAN_CHARACTER_SERVICE_URL" not in process.env, process.label


# --- other links -----------------------------------------------------------------------------------


def _tfvars(env: str) -> str:
    return (ROOT / f"terraform/env/{env}.tfvars").read_text()


def _tf_list(env: str, name: str) -> list[str]:
    match = re.search(rf"^{name}\s*=\s*(\[.*?\])", _tfvars(env), re.M)
    assert match, f"{name} not in terraform/env/{env}.tfvars"
    return list(yaml.safe_load(match.group(1)))


def _tf_value(env: str, name: str) -> str:
    """A string variable: the environment's tfvars, else its default in terraform/variables.tf."""
    match = re.search(rf'^{name}\s*=\s*"([^"]+)"', _tfvars(env), re.M)
    if not match:
        variables = (ROOT / "terraform/variables.tf").read_text()
        match = re.search(rf'variable "{name}" \{{.*?default\s*=\s*"([^"]+)"', variables, re.S)
    assert match, f"{name}: neither in terraform/env/{env}.tfvars nor defaulted"
    return match.group(1)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_apis_trust_forwarded_headers_only_from_the_vpc_and_pod_network(
    procs: dict[str, list[chains.Process]], env: str
) -> None:
    """The ALB (target-type instance) reaches a pod from a node's VPC address or, across nodes, from
    the pod network: exactly those are trusted with X-Forwarded-For, never every peer, so the
    client address of the per-address rate limits cannot be chosen by the client."""
    expected = {_tf_value(env, "vpc_cidr"), _tf_value(env, "pod_cidr")}
    assert set(scaffold.API_ENV_CONFIG[env]["FORWARDED_ALLOW_IPS"].split(",")) == expected, "the scaffold's value"
    apis = [p for p in procs[env] if p.kind == "Deployment" and p.args[0] == "serve"]
    assert {p.args[1] for p in apis} == set(SERVICES)
    for process in apis:
        trusted = process.env.get("FORWARDED_ALLOW_IPS", "")
        assert set(trusted.split(",")) == expected, f"{process.label}: FORWARDED_ALLOW_IPS={trusted!r}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cors_origins_are_the_buckets_cors_origins(procs: dict[str, list[chains.Process]], env: str) -> None:
    """The API's CORS list and the upload bucket's CORS rule name the same client origins."""
    bucket_origins = _tf_list(env, "cors_allowed_origins")
    for process in procs[env]:
        if "CORS_ALLOWED_ORIGINS" in process.env:
            assert process.env["CORS_ALLOWED_ORIGINS"].split(",") == bucket_origins, process.label


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_image_settings_name_terraforms_bucket_and_cdn(procs: dict[str, list[chains.Process]], env: str) -> None:
    bucket = re.search(r'^images_bucket_name\s*=\s*"([^"]+)"', _tfvars(env), re.M)
    domain = re.search(r'^domain_name\s*=\s*"([^"]+)"', _tfvars(env), re.M)
    assert bucket
    assert domain
    for process in procs[env]:
        if "IMAGE_S3_BUCKET" in process.env:
            assert process.env["IMAGE_S3_BUCKET"] == bucket.group(1), process.label
            # terraform/main.tf: cloudfront_domain_name = "<images_subdomain>.<env>.<domain_name>"
            assert process.env["IMAGE_CDN_BASE_URL"] == f"https://images.{env}.{domain.group(1)}", process.label


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overlays_pin_a_tag_ci_pushes(env: str) -> None:
    workflow = (ROOT / ".github/workflows/image.yml").read_text()
    assert 'tag="${environment}-${GITHUB_SHA::12}"' in workflow
    assert 'echo "$REPOSITORY:$environment"' in workflow
    for folder in manifests.domain_folders():
        kustomization = yaml.safe_load((ROOT / f"workloads/domains/{folder}/{env}/kustomization.yaml").read_text())
        (image,) = kustomization["images"]
        tag = image.get("newTag") or image["digest"]
        assert re.fullmatch(rf"{env}(-[0-9a-f]{{12}}(@sha256:[0-9a-f]{{64}})?)?", tag), f"{folder}/{env}: tag {tag}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_identities_match_terraforms_roles(rendered: dict[str, Any], env: str) -> None:
    """Each pod that talks to AWS presents a token of a service account an IRSA role trusts, and
    asks for that role (Helm values, the CloudNativePG Cluster, the ClusterSecretStore)."""
    trusted = {sa: chains.role_name(env, key) for key, accounts in chains.irsa_trust().items() for sa in accounts}
    annotated = {
        f"{sa['metadata']['namespace']}/{sa['metadata']['name']}": sa["metadata"]["annotations"][
            "eks.amazonaws.com/role-arn"
        ]
        for sa in chains.docs(rendered, f"workloads/rbac-storage/{env}")
        if sa["kind"] == "ServiceAccount" and "eks.amazonaws.com/role-arn" in sa["metadata"].get("annotations", {})
    }
    role_of = lambda arn: arn.rsplit("/", 1)[-1]  # noqa: E731
    for sa, arn in annotated.items():
        assert role_of(arn) == trusted[sa], f"{sa}: annotated {arn}"
    accounts = set()
    for app in chains.docs(rendered, f"clusters/{env}/apps"):
        source = app["spec"].get("source", {})
        values = source.get("helm", {}).get("valuesObject", {})
        found = _aws_env(values)
        if not found:
            continue
        ns = app["spec"]["destination"]["namespace"]
        sa_name = _service_account(values)
        assert trusted[f"{ns}/{sa_name}"] == role_of(found["AWS_ROLE_ARN"]), app["metadata"]["name"]
        assert found["AWS_WEB_IDENTITY_TOKEN_FILE"].startswith(_token_mount(values)), app["metadata"]["name"]
        accounts.add(found["AWS_ROLE_ARN"].split(":")[4])
    (store,) = [
        o
        for o in chains.docs(rendered, f"workloads/secrets/external-secrets/{env}")
        if o["kind"] == "ClusterSecretStore"
    ]
    ref = store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]
    assert f"{ref['namespace']}/{ref['name']}" in annotated
    for cluster in (o for o in chains.docs(rendered, f"platform/cr/{env}") if o["kind"] == "Cluster"):
        sa = f"{cluster['metadata']['namespace']}/{cluster['metadata']['name']}"  # CloudNativePG: SA = cluster name
        variables = {e["name"]: e["value"] for e in cluster["spec"]["env"]}
        assert role_of(variables["AWS_ROLE_ARN"]) == trusted[sa]
        assert (
            cluster["spec"]["serviceAccountTemplate"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            == variables["AWS_ROLE_ARN"]
        )
        (source,) = cluster["spec"]["projectedVolumeTemplate"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "sts.amazonaws.com"
        assert variables["AWS_WEB_IDENTITY_TOKEN_FILE"] == "/projected/" + source["serviceAccountToken"]["path"]
        bucket = re.search(r'^backups_bucket_name\s*=\s*"([^"]+)"', _tfvars(env), re.M)
        assert bucket
        assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"] == f"s3://{bucket.group(1)}/"
        accounts.add(variables["AWS_ROLE_ARN"].split(":")[4])
    accounts |= {arn.split(":")[4] for arn in annotated.values()}
    assert len(accounts) == 1, f"{env}: one AWS account per environment, found {accounts}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pods_that_use_the_images_bucket_assume_the_images_role(
    rendered: dict[str, Any], procs: dict[str, list[chains.Process]], env: str
) -> None:
    """Not the nodes' instance role (it has no S3 rights): the images IRSA role, whose trust policy
    names exactly the service accounts of the pods configured with the bucket."""
    role = chains.role_name(env, "images")
    users = set()
    policies = [p for p in chains.docs(rendered, f"workloads/network-policies/{env}") if p["kind"] == "NetworkPolicy"]
    for process in procs[env]:
        if process.args[0] == "migrate":
            continue  # shares its service's ConfigMap; ``eco2 migrate`` opens the database only
        if "IMAGE_S3_BUCKET" not in process.env:
            assert "AWS_ROLE_ARN" not in process.env, f"{process.label}: an AWS role without the bucket"
            continue
        (obj,) = [
            o
            for o in chains.docs(rendered, f"workloads/domains/{process.folder}/{env}")
            if o["kind"] == process.kind and o["metadata"]["name"] == process.name
        ]
        spec = obj["spec"]["template"]["spec"]
        users.add(f"{process.namespace}/{spec['serviceAccountName']}")
        assert process.env.get("AWS_ROLE_ARN", "").endswith(f":role/{role}"), f"{process.label}: AWS_ROLE_ARN"
        token = _token_file(spec["volumes"], spec["containers"][0]["volumeMounts"])
        assert process.env["AWS_WEB_IDENTITY_TOKEN_FILE"] == token, f"{process.label}: token file"
        assert chains.policy_allows(
            policies, "egress", process.namespace, process.labels, None, {}, 443, external=True
        ), f"{process.label}: cannot reach STS and S3 (HTTPS egress)"
    assert users == set(chains.irsa_trust()["images"]), f"{env}: images role trust vs the pods that use the bucket"


def _aws_env(values: dict[str, Any]) -> dict[str, str]:
    for holder in (values, values.get("controller", {})):
        env = holder.get("env")
        if isinstance(env, dict) and "AWS_ROLE_ARN" in env:
            return dict(env)
        if isinstance(env, list) and any(e["name"] == "AWS_ROLE_ARN" for e in env):
            return {e["name"]: e["value"] for e in env}
    return {}


def _service_account(values: dict[str, Any]) -> str:
    return str((values.get("serviceAccount") or values["controller"]["serviceAccount"])["name"])


def _token_mount(values: dict[str, Any]) -> str:
    mounts = values.get("extraVolumeMounts") or values.get("controller", {}).get("volumeMounts")
    volumes = values.get("extraVolumes") or values.get("controller", {}).get("volumes")
    return _token_file(volumes, mounts)


def _token_file(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> str:
    """Where a pod's projected sts.amazonaws.com service-account token is mounted."""
    (volume,) = [v for v in volumes if "projected" in v]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "sts.amazonaws.com"
    (mount,) = [m for m in mounts if m["name"] == volume["name"]]
    return f"{mount['mountPath']}/{source['serviceAccountToken']['path']}"


def test_every_application_uses_the_one_repository(rendered: dict[str, Any]) -> None:
    (source,) = manifests.load_yaml_docs(ROOT / "clusters/repository/repository.yaml")
    url, revision = source["data"]["url"], source["data"]["revision"]
    for env in ENVIRONMENTS:
        for path in (f"clusters/{env}/apps", f"clusters/{env}/bootstrap"):
            for app in chains.docs(rendered, path):
                if app["kind"] == "ApplicationSet":
                    assert app["spec"]["generators"][0]["git"]["repoURL"] == url
                    assert app["spec"]["template"]["spec"]["source"]["targetRevision"] == revision
                for src in app.get("spec", {}).get("sources") or [app.get("spec", {}).get("source", {})]:
                    if "path" in src:
                        assert (src["repoURL"], src["targetRevision"]) == (url, revision), app["metadata"]["name"]
    tasks = (ROOT / "ansible/roles/argocd/tasks/main.yml").read_text()
    assert "kubectl kustomize {{ argocd_bootstrap_dir }}" in tasks
    assert "clusters/{{ eco2_environment }}/bootstrap" in (ROOT / "ansible/roles/argocd/defaults/main.yml").read_text()


def test_every_registered_service_is_deployed_with_a_role_and_schema(rendered: dict[str, Any]) -> None:
    for env in ENVIRONMENTS:
        cr = chains.docs(rendered, f"platform/cr/{env}")
        (cluster,) = [o for o in cr if o["kind"] == "Cluster"]
        (database,) = [o for o in cr if o["kind"] == "Database"]
        roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
        schemas = {s["name"]: s["owner"] for s in database["spec"]["schemas"]}
        for name, entry in SERVICES.items():
            if entry.has_migrations:
                assert name in roles, f"{env}: no PostgreSQL role {name}"
                assert schemas.get(entry.db_schema) == name, f"{env}: schema {entry.db_schema} not owned by {name}"
        # The relay reads and marks every outbox table through membership in its owner's role.
        outboxes = {name for name, entry in SERVICES.items() if entry.outbox}
        assert set(roles["relay"]["inRoles"]) == outboxes, f"{env}: relay roles vs services with an outbox"
