"""What a rendered environment asks of the code and of the platform, derived from the manifests.

Each pod template of an overlay becomes a ``Process``: the command it runs and the environment it
gets (ConfigMap values, plus Secret keys filled from a test store through the ExternalSecret templates
that create them). The chain tests and the deploy rehearsal read these, so a wrong name, key, host or
policy in the manifests fails both.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.deploy import manifests
from tests.deploy.manifests import ROOT

# A stand-in value per SSM key: long, random-looking, never a placeholder the services refuse.
SECRET_STORE_SEED = "rehearsal"
_TEMPLATE = re.compile(r"\{\{\s*\.(\w+)\s*(\|\s*urlquery\s*)?\}\}")


def store_value(key: str) -> str:
    """The test store's value for an SSM key (/eco2/<env>/<owner>/<name>)."""
    import hashlib

    return "s" + hashlib.sha256(f"{SECRET_STORE_SEED}:{key.split('/', 3)[-1]}".encode()).hexdigest()[:31]


def render_template(template: str, values: dict[str, str]) -> str:
    from urllib.parse import quote

    def sub(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return quote(value, safe="") if match.group(2) else value

    rendered = _TEMPLATE.sub(sub, template)
    assert "{{" not in rendered, f"template syntax the rehearsal does not know: {template}"
    return rendered


def docs(rendered: dict[str, Any], path: str) -> list[dict[str, Any]]:
    value = rendered[path]
    if isinstance(value, Exception):
        raise value
    return list(value)


def secrets(rendered: dict[str, Any], env: str, store: Any = store_value) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, Secret name) -> data, as External Secrets would create them from the store."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for es in docs(rendered, f"workloads/secrets/external-secrets/{env}"):
        if es["kind"] != "ExternalSecret":
            continue
        values = {item["secretKey"]: store(item["remoteRef"]["key"]) for item in es["spec"]["data"]}
        template = es["spec"]["target"].get("template", {}).get("data") or {k: f"{{{{ .{k} }}}}" for k in values}
        out[(es["metadata"]["namespace"], es["spec"]["target"]["name"])] = {
            k: render_template(v, values) for k, v in template.items()
        }
    return out


def remote_keys(rendered: dict[str, Any], env: str) -> set[str]:
    """Every SSM parameter an ExternalSecret or ClusterExternalSecret of the environment reads."""
    keys = set()
    for obj in docs(rendered, f"workloads/secrets/external-secrets/{env}"):
        spec = obj["spec"].get("externalSecretSpec", obj["spec"]) if obj["kind"].endswith("ExternalSecret") else None
        for item in (spec or {}).get("data", []):
            keys.add(item["remoteRef"]["key"])
    return keys


def terraform_parameters(env: str, root: Path = ROOT) -> set[str]:
    """The SSM parameters terraform/main.tf creates for an environment (module "secrets")."""
    main = (root / "terraform/main.tf").read_text()
    assert 'jsondecode(file("${path.module}/ssm-parameters.json"))' in main
    assert 'ssm_prefix   = "/eco2/${var.environment}"' in main
    table = json.loads((root / "terraform/ssm-parameters.json").read_text())
    return {f"/eco2/{env}/{owner}/{key}" for owner, keys in table.items() for key in keys}


def irsa_trust(root: Path = ROOT) -> dict[str, list[str]]:
    """terraform/modules/iam: IRSA role key -> the service accounts ("namespace/name") its trust
    policy names (``irsa_service_accounts``, one each, plus the shared ``images`` role)."""
    text = (root / "terraform/modules/iam/variables.tf").read_text()

    def default(variable: str, opening: str, closing: str) -> str:
        block = text[text.index(f'variable "{variable}"') :]
        return block[block.index(f"default = {opening}") : block.index(f"\n  {closing}\n")]

    single = re.findall(r'^\s+(\w+)\s*=\s*"([^"]+)"', default("irsa_service_accounts", "{", "}"), re.M)
    images = re.findall(r'"([^"]+)"', default("images_service_accounts", "[", "]"))
    return {**{key: [account] for key, account in single}, "images": images}


def role_name(env: str, key: str) -> str:
    """The IAM role Terraform names for an IRSA key (``${var.name}-<key>``, var.name = eco2-<env>)."""
    return f"eco2-{env}-{key.replace('_', '-')}"


@dataclass
class Process:
    folder: str
    kind: str  # Deployment or Job
    name: str
    namespace: str
    args: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.folder}: {self.kind}/{self.name}"


def processes(rendered: dict[str, Any], env: str, store: Any = store_value) -> list[Process]:
    secret_data = secrets(rendered, env, store)
    found = []
    for folder in manifests.domain_folders():
        objects = docs(rendered, f"workloads/domains/{folder}/{env}")
        config = {
            (o["metadata"]["namespace"], o["metadata"]["name"]): o.get("data", {})
            for o in objects
            if o["kind"] == "ConfigMap"
        }
        for obj in objects:
            if obj["kind"] not in {"Deployment", "Job"}:
                continue
            ns = obj["metadata"]["namespace"]
            template = obj["spec"]["template"]
            (container,) = template["spec"]["containers"]
            values: dict[str, str] = {}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    values.update(config[(ns, source["configMapRef"]["name"])])
                else:
                    values.update(secret_data[(ns, source["secretRef"]["name"])])
            for item in container.get("env", []):
                values[item["name"]] = item["value"]
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            found.append(
                Process(
                    folder,
                    obj["kind"],
                    obj["metadata"]["name"],
                    ns,
                    list(container["args"]),
                    values,
                    template["metadata"].get("labels", {}),
                    ports,
                )
            )
    return found


# --- what the code reads ---------------------------------------------------------------------------


def entry_modules(args: list[str]) -> list[str]:
    """The modules a command of the one image imports to do its work (services/cli.py), from the
    registry entries it names."""
    from services.registry import SERVICES

    def module(target: str) -> str:
        return target.split(":")[0]

    match args:
        case ["serve", name]:
            return [module(SERVICES[name].factory)]
        case ["migrate", name]:
            # The migrations Job shares its service's ConfigMap and Secret, so it loads what the service does.
            return ["services.common.migrations", module(SERVICES[name].factory)]
        case ["worker", "relay"]:
            return ["services.workers"]
        case ["worker", "consumers", *names]:
            return ["services.workers", *(SERVICES[n].consumers or "services.workers" for n in names)]
        case ["worker", command]:
            targets = [e.workers[command] for e in SERVICES.values() if command in e.workers]
            if targets:
                return [module(targets[0])]
    raise AssertionError(f"{args}: not a command the registry declares (services/registry.py)")


_PROBE = r"""
import importlib, json, sys
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
for module in sys.argv[1:]:
    importlib.import_module(module)
def walk(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from walk(sub)
out = {}
for cls in set(walk(BaseSettings)):
    if not cls.__module__.startswith("services."):
        continue
    prefix = cls.model_config.get("env_prefix", "")
    names = []
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names += [c.upper() for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            names.append(alias.upper())
        else:
            names.append((prefix + name).upper())
    out[f"{cls.__module__}:{cls.__qualname__}"] = sorted(set(names))
print(json.dumps(out))
"""


@cache
def settings_read(modules: tuple[str, ...]) -> dict[str, list[str]]:
    """Settings classes a process loads (``module:Class`` -> the variables each reads).

    Imported in a fresh interpreter, so only what that process's modules pull in is counted.
    """
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


_CHECK = r"""
import importlib, json, os, sys
base = dict(os.environ)
out = []
for job in json.load(sys.stdin):
    os.environ.clear()
    os.environ.update({**base, **job["env"]})
    errors = {}
    for target in job["classes"]:
        module, _, name = target.partition(":")
        try:
            getattr(importlib.import_module(module), name)()
        except Exception as exc:
            errors[target] = str(exc)
    out.append(errors)
print(json.dumps(out))
"""


def settings_errors(jobs: list[tuple[list[str], dict[str, str]]]) -> list[dict[str, str]]:
    """Instantiate each settings class with exactly its process's environment (the production
    validators run), all processes in one interpreter."""
    import os

    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH"}}
    payload = json.dumps([{"classes": classes, "env": env} for classes, env in jobs])
    result = subprocess.run(
        [sys.executable, "-c", _CHECK], input=payload, capture_output=True, text=True, cwd=ROOT, env=clean, check=False
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@cache
def sdk_variables() -> frozenset[str]:
    """Environment variables the AWS SDK reads itself (botocore's credential chain and config), so a
    pod may set them for boto3 rather than for a settings class."""
    import inspect

    import botocore.configprovider
    import botocore.credentials

    source = inspect.getsource(botocore.credentials) + inspect.getsource(botocore.configprovider)
    return frozenset(re.findall(r"['\"](AWS_[A-Z_]+)['\"]", source))


# --- who a process calls ---------------------------------------------------------------------------

# Variables that hold addresses handed to clients (browsers, the CDN), not addresses a process calls.
CLIENT_FACING = ("PUBLIC_", "CDN_", "FRONTEND_", "ORIGINS", "REDIRECT_", "ISSUER")
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql+asyncpg": 5432, "postgresql": 5432, "redis": 6379, "amqp": 5672}


def calls(process: Process) -> list[tuple[str, str, int]]:
    """(variable, host, port) of every URL setting the process is configured to call (a migrations
    Job runs ``eco2 migrate``, which opens the database only)."""
    out = []
    for name, value in sorted(process.env.items()):
        if process.args[0] == "migrate" and name != "DATABASE_URL":
            continue
        if any(marker in name for marker in CLIENT_FACING) or "://" not in value:
            continue
        parts = urlsplit(value)
        assert parts.hostname, f"{process.label}: {name} has no host"
        out.append((name, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]))
    return out


# Services the operators create for our custom resources (pinned versions' documented names).
OPERATOR_SERVICES = {
    "Cluster": lambda name: {f"{name}-rw": 5432, f"{name}-ro": 5432, f"{name}-r": 5432},  # CloudNativePG
    "RabbitmqCluster": lambda name: {name: 5672},  # RabbitMQ cluster operator: the client Service
    "RedisReplication": lambda name: {f"{name}-master": 6379, name: 6379},  # OT redis-operator
}


@dataclass(frozen=True)
class Endpoint:
    namespace: str
    service: str
    port: int  # the port the pods listen on
    pod_labels: tuple[tuple[str, str], ...]  # () for operator-managed pods


def cluster_services(rendered: dict[str, Any], env: str) -> dict[tuple[str, int], Endpoint]:
    """'<svc>.<ns>.svc.cluster.local', port -> where the traffic lands."""
    out: dict[tuple[str, int], Endpoint] = {}
    workloads = [o for f in manifests.domain_folders() for o in docs(rendered, f"workloads/domains/{f}/{env}")]
    for svc in (o for o in workloads if o["kind"] == "Service"):
        ns = svc["metadata"]["namespace"]
        selector = svc["spec"]["selector"]
        (pod,) = [
            d["spec"]["template"]
            for d in workloads
            if d["kind"] == "Deployment"
            and d["metadata"]["namespace"] == ns
            and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        container_ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
        for port in svc["spec"]["ports"]:
            target = port["targetPort"]
            out[(f"{svc['metadata']['name']}.{ns}.svc.cluster.local", port["port"])] = Endpoint(
                ns,
                svc["metadata"]["name"],
                container_ports.get(target, target),
                tuple(sorted(pod["metadata"]["labels"].items())),
            )
    for obj in docs(rendered, f"platform/cr/{env}"):
        if obj["kind"] in OPERATOR_SERVICES:
            ns = obj["metadata"]["namespace"]
            for name, port in OPERATOR_SERVICES[obj["kind"]](obj["metadata"]["name"]).items():
                out[(f"{name}.{ns}.svc.cluster.local", port)] = Endpoint(ns, name, port, ())
    return out


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    assert not selector.get("matchExpressions"), "matchExpressions: teach tests/deploy/chains.py"
    return selector.get("matchLabels", {}).items() <= labels.items()


def _peer_allows(
    peer: dict[str, Any], ns_labels: dict[str, str] | None, pod_labels: dict[str, str], external: bool
) -> bool:
    if "ipBlock" in peer:
        return external and peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    if external or ns_labels is None:
        return False
    if "namespaceSelector" not in peer and "podSelector" not in peer:
        return False
    return _matches(peer.get("namespaceSelector"), ns_labels) and _matches(peer.get("podSelector"), pod_labels)


def policy_allows(
    policies: list[dict[str, Any]],
    direction: str,
    namespace: str,
    pod_labels: dict[str, str],
    peer_ns_labels: dict[str, str] | None,
    peer_pod_labels: dict[str, str],
    port: int,
    *,
    external: bool = False,
) -> bool:
    """Kubernetes NetworkPolicy semantics for one direction of one connection."""
    kind, rules_key, peers_key = ("Egress", "egress", "to") if direction == "egress" else ("Ingress", "ingress", "from")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and kind in p["spec"]["policyTypes"]
        and _matches(p["spec"]["podSelector"], pod_labels)
    ]
    if not selecting:
        return True  # no policy isolates this pod in this direction
    for policy in selecting:
        for rule in policy["spec"].get(rules_key, []):
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port for p in ports):
                continue
            peers = rule.get(peers_key)
            if not peers or any(_peer_allows(peer, peer_ns_labels, peer_pod_labels, external) for peer in peers):
                return True
    return False


def namespace_labels(rendered: dict[str, Any], env: str) -> dict[str, dict[str, str]]:
    out = {}
    for ns in docs(rendered, f"workloads/namespaces/{env}"):
        name = ns["metadata"]["name"]
        out[name] = {**ns["metadata"].get("labels", {}), "kubernetes.io/metadata.name": name}
    return out
