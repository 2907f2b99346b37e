"""Every kustomization renders, and every object is valid: built-in kinds against the Kubernetes
JSON schemas of the cluster's version, custom resources against the CRDs in platform/crds."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from tests.deploy import manifests

pytestmark = pytest.mark.infra

DIRS = [manifests.rel(p) for p in manifests.kustomization_dirs()]
# Kinds whose CRDs come with a controller installed outside platform/crds: Argo CD (installed by the
# bootstrap before the root app) and the RabbitMQ operator (its CR is kept out of every overlay).
UNBUNDLED = {
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "ApplicationSet"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}


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
    schema = manifests.crd_schemas().get(key)
    if schema is None:
        assert key in UNBUNDLED, f"{name}: no schema for {key} (add its CRD to platform/crds)"
        return
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


@pytest.mark.parametrize("path", DIRS)
def test_objects_match_schemas(rendered: dict[str, Any], path: str) -> None:
    for obj in objects(rendered, path):
        validate(obj)


def test_excluded_rabbitmq_cluster_is_kept_and_parses() -> None:
    docs = manifests.render(manifests.ROOT / "platform/cr/base/rabbitmq")
    assert {d["kind"] for d in docs} == {"RabbitmqCluster", "ExternalSecret"}
    for env in manifests.ENVIRONMENTS:
        kinds = {d["kind"] for d in manifests.render(manifests.ROOT / f"platform/cr/{env}")}
        assert "RabbitmqCluster" not in kinds, "the RabbitMQ cluster stays out until enabled (platform/cr/README.md)"
    assert "To enable it" in (manifests.ROOT / "platform/cr/README.md").read_text()


def test_every_custom_resource_in_use_has_a_modelled_crd(rendered: dict[str, Any]) -> None:
    """The CRDs of kinds we create must model a spec (not just an open object)."""
    used = {
        (o["apiVersion"], o["kind"])
        for path in manifests.deployed_paths()
        for o in objects(rendered, path)
        if "." in (group := o["apiVersion"].split("/")[0])
        and not group.endswith(".k8s.io")
        and (o["apiVersion"], o["kind"]) not in UNBUNDLED
    }
    for key in used:
        schema = manifests.crd_schemas().get(key)
        assert schema, f"{key} has no CRD in platform/crds"
        assert "properties" in schema["properties"]["spec"], f"{key}: its CRD leaves spec unmodelled"
