"""Write every deploy-side file of a domain service, or one domain folder.

    uv run python scripts/deployment/scaffold_domain.py service info
    uv run python scripts/deployment/scaffold_domain.py api auth
    uv run python scripts/deployment/scaffold_domain.py worker my-consumers --namespace my --args worker,consumers,my

``service`` is the documented path for a new service (docs/workloads.md, "Adding a service"). It
reads the service's entry in ``services/registry.py`` (add it first) and writes a folder for every
Deployment the entry implies (``deployments``: the API, ``<name>-consumers`` when it has consumers,
``<command>-worker`` for each of its workers), its namespace, default service account, network
policies, ExternalSecret with its PostgreSQL role Secret, role and schema (and the relay's
membership when it has an outbox), ingress path and the SSM parameters Terraform creates. The
ApplicationSet picks the folders up; tests/deploy derives the same folders from the registry and
checks the chains.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "docker.io/eco2/eco2"
# Node groups created by the Terraform layer (label eco2.io/role); the AI workers' nodes are tainted.
NODE_ROLE = {"api": "api", "worker": "worker-storage", "worker-ai": "worker-ai"}

# The outbox relay: one Deployment for every service with an outbox (``eco2 worker relay``).
RELAY = {"relay": ("worker", "relay")}


def registry() -> Mapping[str, Any]:
    """``services.registry.SERVICES`` of this checkout (the script runs from any directory)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from services.registry import SERVICES

    return SERVICES


def deployments(entry: Any) -> dict[str, tuple[str, ...]]:
    """Domain folder -> container args of every Deployment a registry entry
    (``services.common.identity.ServiceEntry``) implies."""
    out: dict[str, tuple[str, ...]] = {entry.name: ("serve", entry.name)}
    if entry.consumers:
        out[f"{entry.name}-consumers"] = ("worker", "consumers", entry.name)
    for command in entry.workers:  # ``eco2 worker <command>``
        out[f"{command}-worker"] = ("worker", command)
    return out


def uses_broker(entry: Any) -> bool:
    """RABBITMQ_URL in its Secret and the allow-rabbitmq policy: only a service that publishes (an
    outbox) or consumes events; every one of its processes shares the one Secret."""
    return bool(entry.uses_broker)


def uses_jwks(entry: Any) -> bool:
    """JWKS_URL and the allow-jwks policy: only an API with routes that verify a user's token."""
    from services.common.app import authenticated_routes

    return bool(authenticated_routes(entry.create_app()))


def all_deployments(entries: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """Every domain folder of the distribution: each entry's Deployments plus the relay."""
    entries = list(entries)
    out = dict(RELAY) if any(e.outbox for e in entries) else {}
    for entry in entries:
        out.update(deployments(entry))
    return out


API_CONFIG = {
    "ENVIRONMENT": "production",
    "LOG_LEVEL": "INFO",
    "LOG_JSON": "true",
    "ECO2_DATA_DIR": "/tmp/eco2",  # noqa: S108 - the pod's private emptyDir, not a shared /tmp
    "JWT_AUDIENCE": "eco2-api",
    "JWKS_URL": "http://auth.auth.svc.cluster.local/api/v1/auth/.well-known/jwks.json",
}
ENV_CONFIG = {
    "dev": {
        "PUBLIC_API_BASE_URL": "https://api.dev.eco2.example.com",
        "CORS_ALLOWED_ORIGINS": "https://dev.eco2.example.com,http://localhost:5173,https://localhost:5173",
        "DOCS_ENABLED": "true",
        "LOG_LEVEL": "DEBUG",
        "REDIS_KEY_PREFIX": "eco2:dev:",
    },
    "prod": {
        "PUBLIC_API_BASE_URL": "https://api.prod.eco2.example.com",
        "CORS_ALLOWED_ORIGINS": "https://eco2.example.com,https://www.eco2.example.com",
        "DOCS_ENABLED": "false",
        "LOG_LEVEL": "INFO",
        "REDIS_KEY_PREFIX": "eco2:prod:",
    },
}
# Peers whose X-Forwarded-For the API believes (services/common/config.py): the ALB and the nodes
# reach pods from the VPC (target-type instance: NodePort, kube-proxy) or, across nodes, from the
# pod network (Calico's tunnel address). Terraform's vpc_cidr and pod_cidr; tests/deploy checks it.
API_ENV_CONFIG = {
    "dev": {"FORWARDED_ALLOW_IPS": "10.20.0.0/16,192.168.0.0/16"},
    "prod": {"FORWARDED_ALLOW_IPS": "10.30.0.0/16,192.168.0.0/16"},
}
SCALE = {  # (min, max) replicas per environment; the relay is a single writer and never scales
    "api": {"dev": (1, 3), "prod": (2, 6)},
    "worker": {"dev": (1, 2), "prod": (2, 4)},
}


def labels(name: str, component: str, indent: int) -> str:
    pad = " " * indent
    return (
        f"{pad}app.kubernetes.io/name: {name}\n"
        f"{pad}app.kubernetes.io/component: {component}\n"
        f"{pad}app.kubernetes.io/part-of: eco2\n"
    )


def selector(name: str, component: str, indent: int) -> str:
    pad = " " * indent
    return f"{pad}app.kubernetes.io/name: {name}\n{pad}app.kubernetes.io/component: {component}\n"


POD_SECURITY = """\
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
"""

CONTAINER_SECURITY = """\
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            privileged: false
            capabilities:
              drop: [ALL]
"""


def env_from(name: str, secret: str) -> str:
    return f"""\
          envFrom:
            - configMapRef:
                name: {name}-config
            - secretRef:
                name: {secret}
"""


def container_common(name: str, secret: str, args: list[str], resources: tuple[str, str, str, str], mounts: str,
                     ports: str = "") -> str:  # fmt: skip
    cpu_req, mem_req, cpu_lim, mem_lim = resources
    arg_list = ", ".join(f'"{a}"' for a in args)
    return f"""\
          image: eco2
          imagePullPolicy: Always
          args: [{arg_list}]
{ports}{env_from(name, secret)}          resources:
            requests:
              cpu: {cpu_req}
              memory: {mem_req}
            limits:
              cpu: "{cpu_lim}"
              memory: {mem_lim}
{CONTAINER_SECURITY}          volumeMounts:
            - name: tmp
              mountPath: /tmp
{mounts}"""


def pod_common(name: str, extra_volumes: str) -> str:
    return f"""\
      serviceAccountName: {name}
      automountServiceAccountToken: false
      enableServiceLinks: false
{POD_SECURITY}"""


def volumes(extra: str) -> str:
    return f"""\
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
{extra}"""


def api_base(
    name: str, namespace: str, extra_config: dict[str, str], mounts: str, extra_volumes: str, jwks: bool = True
) -> dict[str, str]:
    files: dict[str, str] = {}
    files["kustomization.yaml"] = f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
  - serviceaccount.yaml
  - migrate-job.yaml
  - deployment.yaml
  - service.yaml
  - hpa.yaml
  - pdb.yaml
  - servicemonitor.yaml
configMapGenerator:
  - name: {name}-config
    envs:
      - config.env
generatorOptions:
  annotations:
    # Before the migrations hook (wave 0) and the Deployment (wave 1).
    argocd.argoproj.io/sync-wave: "-1"
"""
    config = {k: v for k, v in {**API_CONFIG, **extra_config}.items() if jwks or k != "JWKS_URL"}
    files["config.env"] = "".join(f"{k}={v}\n" for k, v in config.items())
    files["serviceaccount.yaml"] = service_account(name, "api")
    files["migrate-job.yaml"] = f"""\
# Migrations run before the new pods start: a Sync hook in wave 0, after the ConfigMap and
# ServiceAccount (wave -1) and before the Deployment (wave 1). A hook Job is recreated on every sync,
# so its immutable pod template can carry the new image tag.
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}-migrate
  labels:
{labels(name, "migrations", 4)}  annotations:
    argocd.argoproj.io/hook: Sync
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
    argocd.argoproj.io/sync-wave: "0"
spec:
  backoffLimit: 3
  activeDeadlineSeconds: 600
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
{labels(name, "migrations", 8)}    spec:
      restartPolicy: Never
{pod_common(name, "")}      containers:
        - name: migrate
{container_common(name, f"{namespace}-secrets", ["migrate", name], ("100m", "128Mi", "500m", "256Mi"), "")}{volumes("")}"""
    files["deployment.yaml"] = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
{labels(name, "api", 4)}  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  # No replicas here: the HorizontalPodAutoscaler owns the count (Argo CD would otherwise reset it).
  revisionHistoryLimit: 5
  selector:
    matchLabels:
{selector(name, "api", 6)}  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
{labels(name, "api", 8)}    spec:
{pod_common(name, extra_volumes)}      terminationGracePeriodSeconds: 30
      containers:
        - name: {name}
          ports:
            - name: http
              containerPort: 8000
          livenessProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /ready
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          startupProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: 2
            failureThreshold: 30
{container_common(name, f"{namespace}-secrets", ["serve", name], ("100m", "256Mi", "1", "512Mi"), mounts)}{volumes(extra_volumes)}"""
    files["service.yaml"] = f"""\
# NodePort: the ALB sends plain HTTP to every node's port (target-type instance).
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
{labels(name, "api", 4)}  annotations:
    argocd.argoproj.io/sync-wave: "1"
    alb.ingress.kubernetes.io/healthcheck-path: /ready
spec:
  type: NodePort
  selector:
{selector(name, "api", 4)}  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
"""
    files["hpa.yaml"] = hpa(name, "api", 1, 3)
    files["pdb.yaml"] = pdb(name, "api", "minAvailable: 1")
    files["servicemonitor.yaml"] = f"""\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {name}
  labels:
{labels(name, "api", 4)}spec:
  selector:
    matchLabels:
{selector(name, "api", 6)}  endpoints:
    - port: http
      path: /metrics
      interval: 30s
      scrapeTimeout: 10s
"""
    return files


# Workers have no HTTP API: ``eco2 worker …`` serves /metrics on METRICS_PORT, scraped by a PodMonitor.
WORKER_METRICS_PORT = 9090
WORKER_CONFIG = {"METRICS_PORT": str(WORKER_METRICS_PORT)}
METRICS_PORTS = f"""\
          ports:
            - name: metrics
              containerPort: {WORKER_METRICS_PORT}
              protocol: TCP
"""


def pod_monitor(name: str) -> str:
    return f"""\
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {name}
  labels:
{labels(name, "worker", 4)}spec:
  selector:
    matchLabels:
{selector(name, "worker", 6)}  podMetricsEndpoints:
    - port: metrics
      path: /metrics
      interval: 30s
      scrapeTimeout: 10s
"""


def service_account(name: str, component: str) -> str:
    return f"""\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
  labels:
{labels(name, component, 4)}  annotations:
    argocd.argoproj.io/sync-wave: "-1"
# The pods never call the Kubernetes API.
automountServiceAccountToken: false
imagePullSecrets:
  - name: registry-credentials
"""


def pdb(name: str, component: str, budget: str) -> str:
    return f"""\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  labels:
{labels(name, component, 4)}spec:
  {budget}
  selector:
    matchLabels:
{selector(name, component, 6)}"""


def hpa(name: str, component: str, low: int, high: int) -> str:
    return f"""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
  labels:
{labels(name, component, 4)}spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: {low}
  maxReplicas: {high}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
"""


def worker_base(
    name: str, namespace: str, args: list[str], scalable: bool, ai: bool, extra_config: dict[str, str]
) -> dict[str, str]:
    files: dict[str, str] = {}
    resources = ["serviceaccount.yaml", "deployment.yaml", "pdb.yaml", "podmonitor.yaml"] + (
        ["hpa.yaml"] if scalable else []
    )
    listed = "".join(f"  - {r}\n" for r in resources)
    files["kustomization.yaml"] = f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
{listed}configMapGenerator:
  - name: {name}-config
    envs:
      - config.env
generatorOptions:
  annotations:
    argocd.argoproj.io/sync-wave: "-1"
"""
    config = {k: v for k, v in {**API_CONFIG, **WORKER_CONFIG, **extra_config}.items() if k != "JWKS_URL"}
    files["config.env"] = "".join(f"{k}={v}\n" for k, v in config.items())
    files["serviceaccount.yaml"] = service_account(name, "worker")
    replicas = (
        ""
        if scalable
        else "  # One relay: it is the single reader of every outbox, so it never scales out.\n  replicas: 1\n"
    )
    tolerations = (
        """\
      tolerations:
        - key: eco2.io/role
          operator: Equal
          value: worker-ai
          effect: NoSchedule
"""
        if ai
        else ""
    )
    skip = (
        "    checkov.io/skip1: CKV_K8S_8=a worker has no HTTP server to probe; it exits on a lost broker or database and is restarted\n"
        "    checkov.io/skip2: CKV_K8S_9=a worker has no HTTP server to probe; readiness gates Service traffic and a worker has no Service\n"
    )
    files["deployment.yaml"] = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
{labels(name, "worker", 4)}  annotations:
    argocd.argoproj.io/sync-wave: "1"
{skip}spec:
{replicas}  revisionHistoryLimit: 5
  selector:
    matchLabels:
{selector(name, "worker", 6)}  template:
    metadata:
      labels:
{labels(name, "worker", 8)}    spec:
{pod_common(name, "")}      # SIGTERM makes the worker finish the message in hand and stop consuming.
      terminationGracePeriodSeconds: 60
{tolerations}      containers:
        - name: {name}
{container_common(name, f"{namespace}-secrets", args, ("50m", "192Mi", "1" if ai else "500m", "768Mi" if ai else "384Mi"), "", METRICS_PORTS)}{volumes("")}"""
    files["pdb.yaml"] = pdb(name, "worker", "maxUnavailable: 1")
    files["podmonitor.yaml"] = pod_monitor(name)
    if scalable:
        files["hpa.yaml"] = hpa(name, "worker", 1, 2)
    return files


def overlay(name: str, kind: str, env: str, scalable: bool, node_role: str, env_config: dict[str, str]) -> str:
    literals = "".join(f'      - "{k}={v}"\n' for k, v in env_config.items())
    low, high = SCALE["api" if kind == "api" else "worker"][env]
    scale = (
        f"""\
  - target:
      kind: HorizontalPodAutoscaler
      name: {name}
    patch: |-
      - op: replace
        path: /spec/minReplicas
        value: {low}
      - op: replace
        path: /spec/maxReplicas
        value: {high}
"""
        if scalable
        else ""
    )
    return f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
images:
  - name: eco2
    newName: {IMAGE}
    newTag: "{env}"
configMapGenerator:
  - name: {name}-config
    behavior: merge
    literals:
{literals}patches:
  - target:
      kind: Deployment
      name: {name}
    patch: |-
      - op: add
        path: /spec/template/spec/nodeSelector
        value:
          eco2.io/role: {node_role}
{scale}"""


def write_folder(
    root: Path,
    name: str,
    namespace: str,
    args: list[str],
    *,
    scalable: bool = True,
    ai: bool = False,
    jwks: bool = True,
) -> None:
    """``workloads/domains/<name>/{base,dev,prod}``: an API for ``serve`` (``JWKS_URL`` when ``jwks``),
    a worker otherwise."""
    folder = root / "workloads" / "domains" / name
    kind = "api" if args[0] == "serve" else "worker"
    if kind == "api":
        base, role = api_base(name, namespace, {}, "", "", jwks), NODE_ROLE["api"]
    else:
        base, role = worker_base(name, namespace, args, scalable, ai, {}), NODE_ROLE["worker-ai" if ai else "worker"]
    for filename, text in base.items():
        path = folder / "base" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for env in ("dev", "prod"):
        path = folder / env / "kustomization.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {**ENV_CONFIG[env], **(API_ENV_CONFIG[env] if kind == "api" else {})}
        path.write_text(overlay(name, kind, env, scalable or kind == "api", role, config))


def _append_list_item(path: Path, key_line: str, item: str) -> None:
    """Add ``  - item`` to the YAML list that starts at ``key_line`` (kept in file order)."""
    lines = path.read_text().splitlines()
    start = lines.index(key_line)
    end = start + 1
    bullet = "  - " if lines[end].startswith("  - ") else "- "
    while end < len(lines) and lines[end].startswith(bullet):
        end += 1
    if f"{bullet}{item}" not in lines[start:end]:
        lines.insert(end, f"{bullet}{item}")
    path.write_text("\n".join(lines) + "\n")


def dump_parameters(table: Mapping[str, list[str]]) -> str:
    """terraform/ssm-parameters.json with one line per owner, so adding a service is a one-line diff."""
    lines = [f"  {json.dumps(owner)}: {json.dumps(keys)}" for owner, keys in table.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def scaffold_service(root: Path, entry: Any) -> list[str]:
    """Every deploy-side file of a registered service (``services.registry`` entry); returns what it
    wrote or changed. Only what is missing is written, so running it again after the entry gained a
    worker adds that worker's folder and leaves the edited ones alone."""
    name = entry.name
    broker, jwks = uses_broker(entry), uses_jwks(entry)
    changed = []
    for folder, args in deployments(entry).items():
        if not (root / "workloads/domains" / folder).exists():
            write_folder(root, folder, name, list(args), jwks=jwks)
            changed.append(f"workloads/domains/{folder}")
    namespaces = root / "workloads/namespaces/base/namespaces.yaml"
    if f"  name: {name}\n" not in namespaces.read_text():
        namespaces.write_text(
            namespaces.read_text().rstrip("\n")
            + f"""
---
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels:
    eco2.io/tier: domain
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
"""
        )
    accounts = root / "workloads/rbac-storage/base/default-serviceaccounts.yaml"
    if f"  namespace: {name}\n" not in accounts.read_text():
        accounts.write_text(
            accounts.read_text().rstrip("\n")
            + f"""
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: {name}
automountServiceAccountToken: false
imagePullSecrets:
  - name: registry-credentials
"""
        )
    changed += ["workloads/namespaces/base/namespaces.yaml", "workloads/rbac-storage/base/default-serviceaccounts.yaml"]
    # Network policies: the my service's flows (load balancer, monitoring; JWKS and the broker only
    # when the entry uses them, see uses_jwks / uses_broker).
    policies = root / "workloads/network-policies/base"
    if not (policies / name).exists():
        (policies / name).mkdir()
        left_out = {"allow-jwks.yaml"} - ({"allow-jwks.yaml"} if jwks else set())
        left_out |= {"allow-rabbitmq.yaml"} - ({"allow-rabbitmq.yaml"} if broker else set())
        for source in sorted((policies / "my").glob("*.yaml")):
            if source.name in left_out:
                continue
            text = source.read_text().replace("namespace: my\n", f"namespace: {name}\n")
            text = "".join(line for line in text.splitlines(keepends=True) if line.strip("- \n") not in left_out)
            (policies / name / source.name).write_text(text)
        _append_list_item(policies / "kustomization.yaml", "resources:", name)
        changed.append(f"workloads/network-policies/base/{name}")
    # Secrets: the service's Secret and its PostgreSQL role Secret, from the SSM keys Terraform creates.
    secrets = root / "workloads/secrets/external-secrets/base"
    if not (secrets / f"{name}.yaml").exists():
        template = (secrets / "my.yaml").read_text()
        if not broker:  # no RABBITMQ_URL, and no read of the broker's password
            template = re.sub(r"^ +RABBITMQ_URL: .*\n", "", template, flags=re.M)
            template = re.sub(r"^  - secretKey: rabbitmq_password\n(?:    .*\n)+", "", template, flags=re.M)
        (secrets / f"{name}.yaml").write_text(re.sub(r"\bmy\b", name, template))
        _append_list_item(secrets / "kustomization.yaml", "resources:", f"{name}.yaml")
    parameters = root / "terraform/ssm-parameters.json"
    table = json.loads(parameters.read_text())
    table.setdefault(name, ["database-password"])
    parameters.write_text(dump_parameters(table))
    changed += [f"workloads/secrets/external-secrets/base/{name}.yaml", "terraform/ssm-parameters.json"]
    # PostgreSQL: a login role in the cluster and a schema it owns.
    cluster = root / "platform/cr/base/postgres/cluster.yaml"
    text = cluster.read_text()
    if f"      - name: {name}\n" not in text:
        role = f"""      - name: {name}
        ensure: present
        login: true
        inherit: true
        inRoles: [eco2]
        passwordSecret:
          name: pg-role-{name}
"""
        text = text.replace("      # The outbox relay", role + "      # The outbox relay")
    if entry.outbox:  # the relay reads and marks the service's outbox table as a member of its role
        relay = re.compile(r"(      - name: relay\n(?:        .*\n)*?        inRoles: \[)([^\]]*)\]")
        found = relay.search(text)
        assert found, "platform/cr/base/postgres/cluster.yaml has no relay role"
        members = [m.strip() for m in found.group(2).split(",")]
        if name not in members:
            text = relay.sub(lambda m: f"{m.group(1)}{', '.join([*members, name])}]", text)
    cluster.write_text(text)
    database = root / "platform/cr/base/postgres/database.yaml"
    if f"    - name: {name}\n" not in database.read_text():
        database.write_text(
            database.read_text().rstrip("\n") + f"\n    - name: {name}\n      owner: {name}\n      ensure: present\n"
        )
    changed += ["platform/cr/base/postgres/cluster.yaml", "platform/cr/base/postgres/database.yaml"]
    # Ingress: its public prefix on the shared ALB.
    ingress = root / "workloads/ingress/base/ingress.yaml"
    docs = ingress.read_text().split("\n---\n")
    if f"  namespace: {name}\n" not in ingress.read_text():
        block = docs[1]
        orders = [int(m) for m in re.findall(r'group.order: "(\d+)"', ingress.read_text())]
        block = block.replace("name: my\n", f"name: {name}\n").replace("namespace: my\n", f"namespace: {name}\n")
        block = re.sub(r'group.order: "\d+"', f'group.order: "{max(orders) + 10}"', block)
        block = re.sub(r"path: /api/v1/users", f"path: {entry.prefix}", block)
        block = re.sub(r"(service:\n\s+name: )my", rf"\g<1>{name}", block)
        ingress.write_text(ingress.read_text().rstrip("\n") + "\n---\n" + block.rstrip("\n") + "\n")
    changed.append("workloads/ingress/base/ingress.yaml")
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if argv[:1] == ["service"]:
        parser.add_argument("service", choices=["service"])
        parser.add_argument("name", help="the service's name in services/registry.py")
        parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
        options = parser.parse_args(argv)
        services = registry()
        if options.name not in services:
            parser.error(f"{options.name} is not in services/registry.py: add its entry first")
        for path in scaffold_service(options.root, services[options.name]):
            print(f"wrote {path}")
        return 0
    parser.add_argument("kind", choices=["api", "worker"])
    parser.add_argument("name", help="folder and Deployment name (the service name for an API)")
    parser.add_argument("--namespace", help="defaults to the name")
    parser.add_argument("--args", help="comma-separated container args (workers)")
    parser.add_argument("--single", action="store_true", help="worker runs exactly one replica (no HPA)")
    parser.add_argument("--ai", action="store_true", help="worker runs on the tainted worker-ai nodes")
    parser.add_argument("--force", action="store_true", help="overwrite an existing folder")
    options = parser.parse_args(argv)

    folder = ROOT / "workloads" / "domains" / options.name
    if folder.exists() and not options.force:
        print(f"{folder} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    if options.kind == "api":
        args = ["serve", options.name]
    else:
        args = (options.args or "").split(",")
        if not all(args):
            parser.error("--args is required for a worker")
    write_folder(
        ROOT, options.name, options.namespace or options.name, args, scalable=not options.single, ai=options.ai
    )
    print(f"wrote {folder.relative_to(ROOT)}/{{base,dev,prod}}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
