"""scripts/deployment/scaffold_domain.py writes every deploy-side file of a new service: scaffold a
throwaway one into a copy of the tree, render everything, and run the chains on the result."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from services.common.identity import ServiceEntry
from services.registry import SERVICES
from tests.deploy import chains, manifests
from tests.deploy.manifests import ENVIRONMENTS, ROOT

pytestmark = pytest.mark.infra

NAME, PREFIX = "zeta", "/api/v1/zeta"
# A registry entry (services/registry.py) with everything that adds a Deployment or a database link:
# consumers, an outbox the relay reads, and two workers of its own.
# Its app: any factory with routes that verify a user's token (scan's), which is what makes the
# scaffold give it JWKS_URL and the JWKS egress.
ENTRY = ServiceEntry(
    NAME,
    PREFIX,
    "services.scan.app:create_app",
    outbox="services.zeta.models:Outbox",
    consumers="services.zeta.consumers",
    workers={"zeta-digest": "services.zeta.digest:run", "zeta-export": "services.zeta.export:run"},
)
# One that neither publishes nor consumes events and verifies no user's token (an app like info's,
# a worker of its own): no broker, no JWKS, in its Secret, config or policies.
QUIET, QUIET_PREFIX = "eta", "/api/v1/eta"
QUIET_ENTRY = ServiceEntry(QUIET, QUIET_PREFIX, "services.info.app:create_app", workers={"eta-sync": "x:y"})
FOLDERS = {
    NAME: ["serve", NAME],
    f"{NAME}-consumers": ["worker", "consumers", NAME],
    "zeta-digest-worker": ["worker", "zeta-digest"],
    "zeta-export-worker": ["worker", "zeta-export"],
}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("scaffold")
    for part in (*manifests.TREES, "terraform"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns(".terraform"))
    writer = manifests.scaffold()
    return root, writer.scaffold_service(root, ENTRY) + writer.scaffold_service(root, QUIET_ENTRY)


@pytest.fixture(scope="module")
def tree(scaffolded: tuple[Path, list[str]]) -> Path:
    return scaffolded[0]


def _render(tree: Path, path: str) -> list[dict[str, Any]]:
    return manifests.render(tree / path)


def test_everything_it_touched_still_renders_and_validates(scaffolded: tuple[Path, list[str]]) -> None:
    from tests.deploy.test_render import validate

    tree, changed = scaffolded
    # The manifest trees it wrote into (workloads/<tree>, workloads/domains/<folder>, platform/cr).
    touched = {
        "/".join(c.split("/")[: 3 if c.startswith("workloads/domains/") else 2])
        for c in changed
        if c.split("/")[0] in manifests.TREES
    }
    dirs = [
        path
        for path in sorted({p.parent for t in manifests.TREES for p in (tree / t).rglob("kustomization.yaml")})
        if path.relative_to(tree).as_posix().startswith(tuple(touched))
        and not manifests.remote_resources(path)
        and "kind: Component" not in (path / "kustomization.yaml").read_text()
    ]
    assert len(dirs) > 20
    with ThreadPoolExecutor(max_workers=4) as pool:
        for docs in pool.map(manifests.render, dirs):
            for obj in docs:
                validate(obj)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_new_service_is_wired_everywhere(tree: Path, env: str) -> None:
    rendered = {
        p: _render(tree, p)
        for p in (
            f"workloads/secrets/external-secrets/{env}",
            f"workloads/namespaces/{env}",
            f"workloads/network-policies/{env}",
            f"workloads/ingress/{env}",
            f"platform/cr/{env}",
            *(f"workloads/domains/{folder}/{env}" for folder in FOLDERS),
        )
    }
    # Secrets <-> Terraform, both ways, with the new service's keys.
    assert chains.remote_keys(rendered, env) == chains.terraform_parameters(env, tree)
    made = chains.secrets(rendered, env)
    assert (NAME, f"{NAME}-secrets") in made
    assert ("postgres", f"pg-role-{NAME}") in made
    # Namespace (a domain one, so it gets the pull secret), policies, role, schema, ingress path.
    labels = chains.namespace_labels(rendered, env)[NAME]
    assert labels["eco2.io/tier"] == "domain"
    policies = [p for p in rendered[f"workloads/network-policies/{env}"] if p["metadata"]["namespace"] == NAME]
    assert {"default-deny", "allow-dns", "allow-postgres", "allow-rabbitmq"} <= {
        p["metadata"]["name"] for p in policies
    }
    (cluster,) = [o for o in rendered[f"platform/cr/{env}"] if o["kind"] == "Cluster"]
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert NAME in roles
    assert NAME in roles["relay"]["inRoles"], "the relay must read the new outbox"
    (database,) = [o for o in rendered[f"platform/cr/{env}"] if o["kind"] == "Database"]
    assert {"name": NAME, "owner": NAME, "ensure": "present"} in database["spec"]["schemas"]
    paths = {
        path["path"]: path["backend"]["service"]["name"]
        for ing in rendered[f"workloads/ingress/{env}"]
        if ing["metadata"]["namespace"] == NAME
        for rule in ing["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert paths == {PREFIX: NAME}
    # One Deployment per registry-declared process, each running its command, reading the Secret that
    # exists and reaching the database through the policies.
    deployments = {
        folder: [o for o in rendered[f"workloads/domains/{folder}/{env}"] if o["kind"] == "Deployment"]
        for folder in FOLDERS
    }
    for folder, args in FOLDERS.items():
        (obj,) = deployments[folder]
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        assert container["args"] == args
        assert obj["metadata"]["namespace"] == NAME
        secret = next(s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s)
        url = made[(NAME, secret)]["DATABASE_URL"]
        assert url.startswith(f"postgresql+asyncpg://{NAME}:")
        pod = obj["spec"]["template"]["metadata"]["labels"]
        assert chains.policy_allows(
            rendered[f"workloads/network-policies/{env}"],
            "egress",
            NAME,
            pod,
            chains.namespace_labels(rendered, env).get("postgres", {"kubernetes.io/metadata.name": "postgres"}),
            {},
            5432,
        )


def test_the_scaffold_derives_exactly_the_registry_folders() -> None:
    """What it writes for an entry is what tests/deploy expects of a registered service."""
    assert {k: list(v) for k, v in manifests.scaffold().deployments(ENTRY).items()} == FOLDERS


def test_terraform_parameters_stay_one_line_per_owner(tree: Path) -> None:
    """The scaffold rewrites terraform/ssm-parameters.json in its committed layout (a one-line diff)."""
    before = [line.rstrip(",") for line in (ROOT / "terraform/ssm-parameters.json").read_text().splitlines()]
    after = [line.rstrip(",") for line in (tree / "terraform/ssm-parameters.json").read_text().splitlines()]
    assert [line for line in after if line not in before] == [
        f'  "{NAME}": ["database-password"]',
        f'  "{QUIET}": ["database-password"]',
    ]
    assert [line for line in before if line not in after] == []


def test_every_registered_service_is_already_scaffolded(tmp_path: Path) -> None:
    """Running the scaffold for each registered service changes nothing: every deploy-side piece of
    each one is in place (and a rerun never overwrites edited files)."""
    for part in (*manifests.TREES, "terraform"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns(".terraform"))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for entry in SERVICES.values():
        manifests.scaffold().scaffold_service(tmp_path, entry)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    changed = sorted(str(p.relative_to(tmp_path)) for p in after if before.get(p) != after[p])
    assert not changed, f"the scaffold would still write {changed}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_broker_and_jwks_follow_the_registry_entry(tree: Path, env: str) -> None:
    """An outbox or consumers -> RABBITMQ_URL, the broker password and allow-rabbitmq; routes that
    verify a user's token -> JWKS_URL and allow-jwks. The quiet service gets none of them (the info
    service's case), and still reaches its database and DNS."""
    scaffold = manifests.scaffold()
    assert scaffold.uses_broker(ENTRY)
    assert scaffold.uses_jwks(ENTRY)
    assert not scaffold.uses_broker(QUIET_ENTRY)
    assert not scaffold.uses_jwks(QUIET_ENTRY)
    rendered = {
        p: _render(tree, p)
        for p in (
            f"workloads/secrets/external-secrets/{env}",
            f"workloads/network-policies/{env}",
            f"workloads/domains/{NAME}/{env}",
            f"workloads/domains/{QUIET}/{env}",
            f"workloads/domains/eta-sync-worker/{env}",
        )
    }
    assert chains.remote_keys(rendered, env) == chains.terraform_parameters(env, tree)
    made = chains.secrets(rendered, env)
    policies = {
        ns: {
            p["metadata"]["name"]
            for p in rendered[f"workloads/network-policies/{env}"]
            if p["metadata"]["namespace"] == ns
        }
        for ns in (NAME, QUIET)
    }
    assert {"allow-rabbitmq", "allow-jwks"} <= policies[NAME]
    assert "RABBITMQ_URL" in made[(NAME, f"{NAME}-secrets")]
    assert not {"allow-rabbitmq", "allow-jwks"} & policies[QUIET]
    assert {"default-deny", "allow-dns", "allow-postgres", "allow-from-load-balancer"} <= policies[QUIET]
    quiet_secret = made[(QUIET, f"{QUIET}-secrets")]
    assert "RABBITMQ_URL" not in quiet_secret
    assert set(quiet_secret) >= {"DATABASE_URL", "REDIS_URL", "INTERNAL_TOKEN"}
    (external,) = [
        o for o in rendered[f"workloads/secrets/external-secrets/{env}"] if o["metadata"]["name"] == f"{QUIET}-secrets"
    ]
    assert not [d for d in external["spec"]["data"] if "rabbitmq" in d["remoteRef"]["key"]]

    def config(folder: str) -> dict[str, str]:
        (cm,) = [o for o in rendered[f"workloads/domains/{folder}/{env}"] if o["kind"] == "ConfigMap"]
        return dict(cm["data"])

    assert config(NAME)["JWKS_URL"].startswith("http://auth.auth.svc.cluster.local/")
    assert "JWKS_URL" not in config(QUIET)
    assert "JWKS_URL" not in config("eta-sync-worker")
    # An API's proxy-header trust is Terraform's networks of that environment (tests/deploy/test_chains.py).
    assert config(NAME)["FORWARDED_ALLOW_IPS"] == scaffold.API_ENV_CONFIG[env]["FORWARDED_ALLOW_IPS"]
