"""scripts/deployment/scaffold_domain.py writes every deploy-side file of a new service: scaffold a
throwaway one into a copy of the tree, render everything, and run the chains on the result."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import chains, manifests
from tests.deploy.manifests import ENVIRONMENTS, ROOT

pytestmark = pytest.mark.infra

NAME, PREFIX = "zeta", "/api/v1/zeta"


def _scaffold() -> Any:
    spec = importlib.util.spec_from_file_location("scaffold_domain", ROOT / "scripts/deployment/scaffold_domain.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scaffold")
    for part in (*manifests.TREES, "terraform"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns(".terraform"))
    _scaffold().scaffold_service(root, NAME, PREFIX, consumers=True)
    return root


def _render(tree: Path, path: str) -> list[dict[str, Any]]:
    return manifests.render(tree / path)


def test_everything_still_renders_and_validates(tree: Path) -> None:
    from tests.deploy.test_render import validate

    dirs = sorted({p.parent for t in manifests.TREES for p in (tree / t).rglob("kustomization.yaml")})
    for path in dirs:
        text = (path / "kustomization.yaml").read_text()
        if manifests.remote_resources(path) or "kind: Component" in text:
            continue
        for obj in _render(tree, path.relative_to(tree).as_posix()):
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
            f"workloads/domains/{NAME}/{env}",
            f"workloads/domains/{NAME}-consumers/{env}",
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
    assert NAME in {r["name"] for r in cluster["spec"]["managed"]["roles"]}
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
    # Its pods read the Secret that exists, and reach the database through the policies.
    for obj in rendered[f"workloads/domains/{NAME}-consumers/{env}"] + rendered[f"workloads/domains/{NAME}/{env}"]:
        if obj["kind"] == "Deployment":
            (container,) = obj["spec"]["template"]["spec"]["containers"]
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
