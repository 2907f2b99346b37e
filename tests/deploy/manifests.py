"""Rendering and schema helpers shared by the deploy tests (no Kubernetes cluster needed)."""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
# The cluster's minor version, as Ansible installs it (kubeadm/kubelet); schemas from kubernetes-validate.
KUBERNETES_VERSION = "{}.{}.0".format(
    *yaml.safe_load((ROOT / "ansible/roles/kubernetes/defaults/main.yml").read_text())["kubernetes_version"].split(".")
)
ENVIRONMENTS = ("dev", "prod")
TREES = ("workloads", "platform", "clusters")
IMAGE_REPOSITORY = "docker.io/eco2/eco2"


@functools.cache
def scaffold() -> ModuleType:
    """scripts/deployment/scaffold_domain.py: which Deployments a registry entry implies, and the
    writer of their folders (one source for the scaffold and these tests)."""
    spec = importlib.util.spec_from_file_location("scaffold_domain", ROOT / "scripts/deployment/scaffold_domain.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deployed_folders() -> dict[str, tuple[str, ...]]:
    """Domain folder -> container args of every Deployment, derived from services/registry.py."""
    result: dict[str, tuple[str, ...]] = scaffold().all_deployments(SERVICES.values())
    return result


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RuntimeError(
            "kubectl not found on PATH: the deploy tests render every kustomization with `kubectl kustomize`; "
            "install kubectl (it bundles kustomize) and rerun"
        )
    return path


def kustomization_dirs() -> list[Path]:
    """Every kustomization this suite renders (not components, not ones that fetch remote manifests)."""
    dirs = {p.parent for tree in TREES for p in (ROOT / tree).rglob("kustomization.yaml")}
    return sorted(
        d for d in dirs if not remote_resources(d) and "kind: Component" not in (d / "kustomization.yaml").read_text()
    )


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {rel(path)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_all() -> dict[str, list[dict[str, Any]]]:
    kubectl()
    dirs = kustomization_dirs()
    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(_render_or_error, dirs))
    return {rel(path): docs for path, docs in zip(dirs, outputs, strict=True)}


def _render_or_error(path: Path) -> Any:
    try:
        return render(path)
    except AssertionError as error:
        return error


def deployed_paths() -> list[str]:
    """The overlays Argo CD applies: every env folder under workloads/ and platform/ plus clusters/<env>."""
    return [
        p for p in map(rel, kustomization_dirs()) if p.rsplit("/", 1)[-1] in ENVIRONMENTS or p.startswith("clusters/")
    ]


def domain_folders() -> list[str]:
    return sorted(p.name for p in (ROOT / "workloads/domains").iterdir() if p.is_dir())


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- custom resource schemas ---------------------------------------------------------------------

SCHEMAS = ROOT / "tests/deploy/schemas"


@functools.cache
def cr_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON schema of the fields we use, from tests/deploy/schemas.

    The cluster gets each CRD from its operator's pinned chart or release; these compact schemas are
    written from that version's documented API (``describes``) so a typo in a field we set fails here.
    """
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        (doc,) = load_yaml_docs(path)
        assert doc.get("describes"), f"{path.name}: say which upstream version the schema describes"
        schemas[(doc["apiVersion"], doc["kind"])] = strict_schema(doc["schema"])
    return schemas


def remote_resources(path: Path) -> list[str]:
    """The http(s) resources of a kustomization (fetched by Argo CD, not renderable offline)."""
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
    return [r for r in kustomization.get("resources", []) if r.startswith(("http://", "https://"))]


def strict_schema(schema: Any) -> Any:
    """An openAPIV3Schema as a JSON schema that rejects fields the CRD does not list.

    The API server prunes unknown fields silently; rejecting them here turns a typo into a failure.
    Objects marked x-kubernetes-preserve-unknown-fields stay open.
    """
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out
