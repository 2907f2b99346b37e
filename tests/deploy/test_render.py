"""Every kustomization renders, and every object is valid: built-in kinds against the Kubernetes
JSON schemas of the cluster's version, custom resources against compact schemas of the pinned
operators' APIs (tests/deploy/schemas)."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from tests.deploy import manifests

pytestmark = pytest.mark.infra

DIRS = [manifests.rel(p) for p in manifests.kustomization_dirs()]


def objects(rendered: dict[str, Any], path: str) -> list[dict[str, Any]]:
    docs = rendered[path]
    if isinstance(docs, Exception):
        raise docs
    return docs


def test_kubectl_is_installed() -> None:
    assert manifests.kubectl()


@pytest.mark.parametrize("path", DIRS)
def test_renders(rendered: dict[str, Any], path: str) -> None:
    assert objects(rendered, path), f"{path} renders to nothing"


def validate(obj: dict[str, Any]) -> None:
    key = (obj["apiVersion"], obj["kind"])
    name = f"{obj['kind']}/{obj['metadata'].get('name')}"
    try:
        kubernetes_validate.validate(obj, manifests.KUBERNETES_VERSION, strict=True)
        return
    except SchemaNotFoundError:
        pass
    except kubernetes_validate.ValidationError as error:
        raise AssertionError(f"{name}: {error.message} at {list(error.path)}") from None
    schema = manifests.cr_schemas().get(key)
    assert schema is not None, f"{name}: no schema for {key} (add one to tests/deploy/schemas)"
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


@pytest.mark.parametrize("path", DIRS)
def test_objects_match_schemas(rendered: dict[str, Any], path: str) -> None:
    for obj in objects(rendered, path):
        validate(obj)


def test_no_custom_resource_definition_is_committed() -> None:
    """CRDs come from the operators' pinned charts/releases, never from a hand-written copy."""
    for tree in manifests.TREES:
        for file in (manifests.ROOT / tree).rglob("*.y*ml"):
            for obj in manifests.load_yaml_docs(file):
                assert not (isinstance(obj, dict) and obj.get("kind") == "CustomResourceDefinition"), file


def test_remote_manifests_are_pinned_release_assets() -> None:
    remote = {
        manifests.rel(p.parent): manifests.remote_resources(p.parent)
        for tree in manifests.TREES
        for p in (manifests.ROOT / tree).rglob("kustomization.yaml")
        if manifests.remote_resources(p.parent)
    }
    assert remote == {
        "platform/operators/rabbitmq-cluster-operator": [
            "https://github.com/rabbitmq/cluster-operator/releases/download/v2.12.0/cluster-operator.yml"
        ]
    }
    (schema,) = list(manifests.SCHEMAS.glob("rabbitmq-*.yaml"))
    assert "v2.12.0" in manifests.load_yaml_docs(schema)[0]["describes"], "schema and release must be one version"


def test_every_custom_resource_in_use_has_a_modelled_schema(rendered: dict[str, Any]) -> None:
    """Kinds we create must model their spec (not just an open object)."""
    used = {
        (o["apiVersion"], o["kind"])
        for path in manifests.deployed_paths()
        for o in objects(rendered, path)
        if "." in (group := o["apiVersion"].split("/")[0]) and not group.endswith(".k8s.io")
    }
    for key in used:
        schema = manifests.cr_schemas().get(key)
        assert schema, f"{key} has no schema in tests/deploy/schemas"
        assert "properties" in schema["properties"]["spec"], f"{key}: its schema leaves spec unmodelled"
