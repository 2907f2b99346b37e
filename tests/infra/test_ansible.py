"""Ansible: syntax, ansible-lint (production profile), role templates rendered for a
sample inventory, and the node label/taint sync logic."""

from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .helpers import ANSIBLE_DIR, FIXTURES, run, venv_tool

pytestmark = pytest.mark.infra

SAMPLE_INVENTORY = FIXTURES / "inventory.yml"
ROLES = ("common", "containerd", "kubernetes", "cni", "node_labels", "argocd")


def _ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_LINT_OFFLINE": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(Path(os.environ.get("TMPDIR", "/tmp")) / "eco2-ansible-tmp"),
    }


def _defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((ANSIBLE_DIR / "roles" / role / "defaults" / "main.yml").read_text())


def test_roles_have_the_standard_layout() -> None:
    for role in ROLES:
        root = ANSIBLE_DIR / "roles" / role
        for required in ("tasks/main.yml", "defaults/main.yml", "meta/main.yml"):
            assert (root / required).is_file(), f"{role}: missing {required}"
        meta = yaml.safe_load((root / "meta" / "main.yml").read_text())
        assert meta["galaxy_info"]["role_name"] == role


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_site_playbook_syntax(environment: str, tmp_path: Path) -> None:
    # The environment's group_vars are loaded from next to the inventory file.
    inv_dir = tmp_path / environment
    (inv_dir / "group_vars").mkdir(parents=True)
    (inv_dir / "hosts.yml").write_text(SAMPLE_INVENTORY.read_text())
    (inv_dir / "group_vars" / "all.yml").write_text(
        (ANSIBLE_DIR / "inventory" / environment / "group_vars" / "all.yml").read_text()
    )
    proc = run(
        [venv_tool("ansible-playbook"), "-i", str(inv_dir / "hosts.yml"), "site.yml", "--syntax-check"],
        cwd=ANSIBLE_DIR,
        env=_ansible_env(),
    )
    assert "playbook: site.yml" in proc.stdout


def test_ansible_lint_production_profile() -> None:
    proc = run(
        [
            venv_tool("ansible-lint"),
            "--offline",
            "-c",
            ".ansible-lint",
            "--profile",
            "production",
            "site.yml",
            "roles",
        ],
        cwd=ANSIBLE_DIR,
        env=_ansible_env(),
        check=False,
    )
    assert proc.returncode == 0, f"ansible-lint failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------
# Templates rendered for the sample inventory
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    run(
        [
            venv_tool("ansible-playbook"),
            "-i",
            str(SAMPLE_INVENTORY),
            str(FIXTURES / "render_templates.yml"),
            "-e",
            f"eco2_ansible_dir={ANSIBLE_DIR}",
            "-e",
            f"render_dir={out}",
        ],
        cwd=ANSIBLE_DIR,
        env=_ansible_env(),
    )
    return out


@pytest.fixture(scope="module")
def inventory() -> dict[str, Any]:
    return yaml.safe_load(SAMPLE_INVENTORY.read_text())


def _hosts(inventory: dict[str, Any]) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = {}

    def walk(group: dict[str, Any]) -> None:
        hosts.update(group.get("hosts") or {})
        for child in (group.get("children") or {}).values():
            walk(child)

    walk(inventory["all"])
    return hosts


def test_kubeadm_config_rendered_for_control_plane(rendered: Path, inventory: dict[str, Any]) -> None:
    vars_ = inventory["all"]["vars"]
    cp_ip = _hosts(inventory)["control-plane-1"]["ansible_host"]
    docs = {d["kind"]: d for d in yaml.safe_load_all((rendered / "control-plane-1" / "kubeadm-config.yaml").open())}
    assert set(docs) == {
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    }

    init = docs["InitConfiguration"]
    assert init["localAPIEndpoint"]["advertiseAddress"] == cp_ip
    assert init["nodeRegistration"]["name"] == "control-plane-1"
    assert init["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"

    cluster = docs["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == "v" + _defaults("kubernetes")["kubernetes_version"]
    assert cluster["clusterName"] == vars_["eco2_cluster_name"]
    assert cluster["controlPlaneEndpoint"] == f"{cp_ip}:6443"
    assert cluster["networking"]["podSubnet"] == vars_["eco2_pod_cidr"]
    assert cluster["networking"]["serviceSubnet"] == vars_["eco2_service_cidr"]
    sans = cluster["apiServer"]["certSANs"]
    assert vars_["eco2_api_endpoint"] in sans
    assert vars_["eco2_api_public_ip"] in sans
    args = cluster["apiServer"]["extraArgs"]
    assert args["service-account-issuer"] == vars_["eco2_oidc_issuer_url"]
    assert args["service-account-jwks-uri"] == vars_["eco2_oidc_issuer_url"] + "/openid/v1/jwks"
    assert "sts.amazonaws.com" in args["api-audiences"].split(",")

    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_containerd_config_rendered_for_every_node(rendered: Path, inventory: dict[str, Any]) -> None:
    defaults = _defaults("containerd")
    for host in _hosts(inventory):
        config = tomllib.loads((rendered / host / "config.toml").read_text())
        cri = config["plugins"]["io.containerd.grpc.v1.cri"]
        assert config["version"] == 2
        assert cri["sandbox_image"] == defaults["containerd_sandbox_image"]
        runc = cri["containerd"]["runtimes"]["runc"]
        assert runc["runtime_type"] == "io.containerd.runc.v2"
        # Must agree with kubelet's cgroupDriver: systemd.
        assert runc["options"]["SystemdCgroup"] is True


def test_kubelet_node_ip_per_host(rendered: Path, inventory: dict[str, Any]) -> None:
    for host, hv in _hosts(inventory).items():
        text = (rendered / host / "kubelet-default").read_text()
        assert f'KUBELET_EXTRA_ARGS="--node-ip={hv["ansible_host"]} --provider-id={hv["provider_id"]}"' in text


def test_control_plane_only_templates_not_rendered_for_workers(rendered: Path) -> None:
    for host in ("api-1", "postgresql-1"):
        assert not (rendered / host / "kubeadm-config.yaml").exists()
        assert not (rendered / host / "calico-installation.yaml").exists()


def test_calico_installation_uses_pod_cidr_and_ipip(rendered: Path, inventory: dict[str, Any]) -> None:
    docs = list(yaml.safe_load_all((rendered / "control-plane-1" / "calico-installation.yaml").open()))
    installation = next(d for d in docs if d["kind"] == "Installation")
    network = installation["spec"]["calicoNetwork"]
    [pool] = network["ipPools"]
    assert pool["cidr"] == inventory["all"]["vars"]["eco2_pod_cidr"]
    # Always encapsulated: the node security groups only pass node-addressed traffic (test_terraform).
    assert pool["encapsulation"] == "IPIP"
    assert network["bgp"] == "Enabled"
    assert network["mtu"] == 8981
    assert "typhaDeployment" in installation["spec"]


def test_chrony_uses_amazon_time_sync(rendered: Path) -> None:
    assert "server 169.254.169.123 prefer iburst" in (rendered / "api-1" / "chrony.conf").read_text()


# ---------------------------------------------------------------------------
# Pinned versions
# ---------------------------------------------------------------------------


def test_kubernetes_versions_are_pinned_consistently() -> None:
    k8s = _defaults("kubernetes")
    version = k8s["kubernetes_version"]
    assert k8s["kubernetes_package_version"].startswith(version + "-")
    major_minor = ".".join(version.split(".")[:2])
    assert k8s["kubernetes_apt_minor"] == f"v{major_minor}"
    assert _defaults("cni")["cni_calico_version"].startswith("v3.")
    assert _defaults("argocd")["argocd_version"].startswith("v2.")
    assert "=" not in _defaults("containerd")["containerd_package_version"]


# ---------------------------------------------------------------------------
# node_labels filter plugin
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_sync() -> ModuleType:
    path = ANSIBLE_DIR / "roles" / "node_labels" / "filter_plugins" / "node_sync.py"
    spec = importlib.util.spec_from_file_location("eco2_node_sync", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _node(labels: dict[str, str], taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"taints": taints or []}}


def test_label_sync_adds_changes_and_removes_only_managed_keys(node_sync: ModuleType) -> None:
    node = _node(
        {
            "kubernetes.io/hostname": "postgresql-1",
            "eco2.io/role": "api",  # wrong
            "eco2.io/stale": "x",  # left the inventory
        }
    )
    desired = {"eco2.io/role": "data", "eco2.io/data": "postgresql"}
    args = node_sync.node_label_args(node, desired, "eco2.io/")
    assert args == ["eco2.io/data=postgresql", "eco2.io/role=data", "eco2.io/stale-"]


def test_label_sync_is_empty_when_in_sync(node_sync: ModuleType) -> None:
    node = _node({"eco2.io/role": "api", "node-role.kubernetes.io/control-plane": ""})
    assert node_sync.node_label_args(node, {"eco2.io/role": "api"}, "eco2.io/") == []


def test_taint_sync_adds_missing_and_removes_stale_managed_taints(node_sync: ModuleType) -> None:
    node = _node(
        {},
        [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "eco2.io/role", "value": "monitoring", "effect": "NoSchedule"},
        ],
    )
    desired = [{"key": "eco2.io/data", "value": "redis", "effect": "NoSchedule"}]
    args = node_sync.node_taint_args(node, desired, "eco2.io/")
    assert args == ["eco2.io/data=redis:NoSchedule", "eco2.io/role:NoSchedule-"]
    in_sync = _node({}, desired)
    assert node_sync.node_taint_args(in_sync, desired, "eco2.io/") == []
