"""bootstrap_cluster.sh / destroy_cluster.sh, run against stub terraform,
ansible-playbook and kubectl that record every call in a log."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, SCRIPTS_DIR, run, venv_tool

pytestmark = pytest.mark.infra

SCRIPTS = ["bootstrap_cluster.sh", "destroy_cluster.sh", "lib.sh"]

STUB_INVENTORY = "all:\n  children:\n    k8s_cluster: {}\n"

# Each stub logs "<tool> <args>" and fails when that line contains STUB_FAIL.
STUB = """#!/usr/bin/env bash
line="$(basename "$0") $*"
printf '%s\\n' "$line" >> "$STUB_LOG"
if [[ -n "${STUB_FAIL:-}" && "$line" == *"$STUB_FAIL"* ]]; then
  echo "stub: $line failed" >&2
  exit 3
fi
if [[ "$line" == "terraform -chdir="*" output -raw ansible_inventory" ]]; then
  printf '%s' "$STUB_INVENTORY"
fi
"""

TOOLS = ("terraform", "ansible-playbook", "kubectl")
# What the scripts and stubs use from the system; PATH holds only these and
# the stubs, so a real terraform/kubectl installed on the machine is never run.
SYSTEM_TOOLS = ("bash", "basename", "cat", "dirname", "env", "mkdir", "mktemp", "mv", "rm")


class Sandbox:
    """A copy of the repo's scripts and the files they read, plus stub tools."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scripts = root / "scripts" / "deployment"
        self.scripts.mkdir(parents=True)
        for name in SCRIPTS:
            shutil.copy2(SCRIPTS_DIR / name, self.scripts / name)
        (root / "terraform" / "env").mkdir(parents=True)
        for env in ("dev", "prod"):
            shutil.copy2(REPO_ROOT / "terraform" / "env" / f"{env}.tfvars", root / "terraform" / "env")
        (root / "ansible").mkdir()
        self.bin = root / "bin"
        self.bin.mkdir()
        self.system_bin = root / "system-bin"
        self.system_bin.mkdir()
        for tool in SYSTEM_TOOLS:
            found = shutil.which(tool)
            assert found, f"{tool} is needed to run the deployment scripts"
            (self.system_bin / tool).symlink_to(found)
        for tool in TOOLS:
            self.add_stub(tool)
        self.log = root / "calls.log"
        self.log.touch()

    def add_stub(self, tool: str) -> None:
        path = self.bin / tool
        path.write_text(STUB)
        path.chmod(0o755)

    def remove_stub(self, tool: str) -> None:
        (self.bin / tool).unlink()

    def calls(self) -> list[str]:
        # Paths differ per sandbox; compare calls relative to it.
        return [line.replace(str(self.root), "<repo>") for line in self.log.read_text().splitlines()]

    def run(
        self, script: str, *args: str, fail: str = "", stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:{self.system_bin}",
            "HOME": str(self.root),
            "STUB_LOG": str(self.log),
            "STUB_FAIL": fail,
            "STUB_INVENTORY": STUB_INVENTORY,
        }
        return subprocess.run(
            [str(self.system_bin / "bash"), str(self.scripts / script), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            check=False,
        )


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


TF = "terraform -chdir=<repo>/terraform"
INV = "<repo>/ansible/inventory/dev/hosts.yml"
SITE = "<repo>/ansible/site.yml"

TERRAFORM_CALLS = [
    f"{TF} init -input=false -reconfigure -backend-config=backend/dev.hcl",
    f"{TF} workspace select -or-create dev",
    f"{TF} apply -input=false -var-file=env/dev.tfvars",
]
INVENTORY_CALLS = [f"{TF} output -raw ansible_inventory"]
ANSIBLE_CALLS = [f"ansible-playbook -i {INV} {SITE} --skip-tags argocd"]
ARGOCD_CALLS = [
    f"ansible-playbook -i {INV} {SITE} --tags argocd",
    "kubectl --kubeconfig <repo>/ansible/artifacts/dev/kubeconfig -n argocd wait application/eco2-root "
    "--for=jsonpath={.status.sync.status}=Synced --timeout=600s",
]


# ---------------------------------------------------------------------------
# static checks
# ---------------------------------------------------------------------------


def test_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in SCRIPTS_DIR.glob("*.sh"))
    assert len(scripts) >= 3
    proc = run(
        [venv_tool("shellcheck"), "--external-sources", "--severity=style", *scripts],
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", ["bootstrap_cluster.sh", "destroy_cluster.sh"])
def test_scripts_are_strict_and_executable(script: str) -> None:
    path = SCRIPTS_DIR / script
    assert os.access(path, os.X_OK)
    assert "set -Eeuo pipefail" in path.read_text()


@pytest.mark.parametrize(
    ("script", "flags"),
    [
        (
            "bootstrap_cluster.sh",
            [
                "--env",
                "--skip-terraform",
                "--skip-ansible",
                "--skip-argocd",
                "--dry-run",
                "--auto-approve",
                "--help",
            ],
        ),
        (
            "destroy_cluster.sh",
            ["--env", "--yes", "--allow-prod", "--skip-cluster-cleanup", "--dry-run", "--help"],
        ),
    ],
)
def test_help_lists_every_flag(sandbox: Sandbox, script: str, flags: list[str]) -> None:
    proc = sandbox.run(script, "--help")
    assert proc.returncode == 0
    for flag in flags:
        assert flag in proc.stdout
    assert sandbox.calls() == []


# ---------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------


def test_bootstrap_runs_layers_in_order(sandbox: Sandbox) -> None:
    proc = sandbox.run("bootstrap_cluster.sh", "--env", "dev")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == TERRAFORM_CALLS + INVENTORY_CALLS + ANSIBLE_CALLS + ARGOCD_CALLS
    assert (sandbox.root / "ansible/inventory/dev/hosts.yml").read_text() == STUB_INVENTORY
    assert "cluster 'dev' bootstrapped" in proc.stderr


def test_bootstrap_auto_approve_reaches_terraform(sandbox: Sandbox) -> None:
    proc = sandbox.run("bootstrap_cluster.sh", "--env=prod", "--auto-approve", "--skip-ansible", "--skip-argocd")
    assert proc.returncode == 0, proc.stderr
    assert f"{TF} apply -input=false -var-file=env/prod.tfvars -auto-approve" in sandbox.calls()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # Without the terraform step the inventory step initialises the directory itself.
        (["--skip-terraform"], TERRAFORM_CALLS[:2] + INVENTORY_CALLS + ANSIBLE_CALLS + ARGOCD_CALLS),
        (["--skip-ansible"], TERRAFORM_CALLS + INVENTORY_CALLS + ARGOCD_CALLS),
        (["--skip-argocd"], TERRAFORM_CALLS + INVENTORY_CALLS + ANSIBLE_CALLS),
        (["--skip-terraform", "--skip-ansible", "--skip-argocd"], TERRAFORM_CALLS[:2] + INVENTORY_CALLS),
    ],
    ids=["skip-terraform", "skip-ansible", "skip-argocd", "skip-all"],
)
def test_bootstrap_skip_flags(sandbox: Sandbox, flags: list[str], expected: list[str]) -> None:
    proc = sandbox.run("bootstrap_cluster.sh", "--env", "dev", *flags)
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == expected
    for flag in flags:
        assert f"skipped ({flag})" in proc.stderr


def test_skipped_steps_do_not_require_their_tools(sandbox: Sandbox) -> None:
    sandbox.remove_stub("kubectl")
    sandbox.remove_stub("ansible-playbook")
    proc = sandbox.run("bootstrap_cluster.sh", "--env", "dev", "--skip-ansible", "--skip-argocd")
    assert proc.returncode == 0, proc.stderr


def test_bootstrap_dry_run_runs_nothing(sandbox: Sandbox) -> None:
    proc = sandbox.run("bootstrap_cluster.sh", "--env", "dev", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == []
    assert not (sandbox.root / "ansible/inventory/dev/hosts.yml").exists()
    printed = [line.replace(str(sandbox.root), "<repo>") for line in proc.stdout.splitlines()]
    steps = [line.split(":", 1)[0] for line in printed if line.startswith("[dry-run]")]
    assert (
        steps
        == ["[dry-run] terraform"] * 3 + ["[dry-run] inventory"] * 2 + ["[dry-run] ansible"] + ["[dry-run] argocd"] * 2
    )
    assert f"[dry-run] ansible: ansible-playbook -i {INV} {SITE} --skip-tags argocd" in printed


@pytest.mark.parametrize(
    ("fail_on", "step", "last_call"),
    [
        ("apply", "terraform", TERRAFORM_CALLS[-1]),
        ("output -raw ansible_inventory", "inventory", INVENTORY_CALLS[0]),
        ("--skip-tags argocd", "ansible", ANSIBLE_CALLS[0]),
        ("--tags argocd", "argocd", ARGOCD_CALLS[0]),
        ("kubectl", "argocd", ARGOCD_CALLS[1]),
    ],
)
def test_failing_step_stops_with_its_name(sandbox: Sandbox, fail_on: str, step: str, last_call: str) -> None:
    proc = sandbox.run("bootstrap_cluster.sh", "--env", "dev", fail=fail_on)
    assert proc.returncode != 0
    assert f"step '{step}' failed" in proc.stderr
    assert sandbox.calls()[-1] == last_call, "the script went on after the failing step"


def test_failed_inventory_leaves_no_partial_file(sandbox: Sandbox) -> None:
    sandbox.run("bootstrap_cluster.sh", "--env", "dev", fail="output -raw")
    leftovers = list((sandbox.root / "ansible/inventory/dev").glob("hosts.yml*"))
    assert leftovers == []


def test_missing_tool_is_reported_before_anything_runs(sandbox: Sandbox) -> None:
    sandbox.remove_stub("kubectl")
    proc = sandbox.run("bootstrap_cluster.sh", "--env", "dev")
    assert proc.returncode != 0
    assert "step 'preflight' failed" in proc.stderr
    assert "kubectl" in proc.stderr
    assert sandbox.calls() == []


@pytest.mark.parametrize("args", [[], ["--env", "staging"], ["--env", "dev", "--bogus"]])
def test_bootstrap_rejects_bad_arguments(sandbox: Sandbox, args: list[str]) -> None:
    proc = sandbox.run("bootstrap_cluster.sh", *args)
    assert proc.returncode != 0
    assert "ERROR:" in proc.stderr
    assert sandbox.calls() == []


# ---------------------------------------------------------------------------
# destroy
# ---------------------------------------------------------------------------

KUBECTL = "kubectl --kubeconfig <repo>/ansible/artifacts/{env}/kubeconfig"


def _cleanup_calls(env: str) -> list[str]:
    k = KUBECTL.format(env=env)
    return [
        f"{k} -n argocd delete application eco2-root --ignore-not-found --wait --timeout=600s",
        f"{k} delete ingress --all --all-namespaces --wait --timeout=600s",
        f"{k} delete service --all-namespaces --field-selector spec.type=LoadBalancer --wait --timeout=600s",
        f"{k} delete pvc --all --all-namespaces --wait --timeout=600s",
    ]


def _destroy_calls(env: str) -> list[str]:
    return [
        f"{TF} init -input=false -reconfigure -backend-config=backend/{env}.hcl",
        f"{TF} workspace select -or-create {env}",
        f"{TF} destroy -input=false -var-file=env/{env}.tfvars -auto-approve",
    ]


@pytest.fixture
def with_kubeconfig(sandbox: Sandbox) -> Callable[[str], None]:
    def make(env: str) -> None:
        path = sandbox.root / "ansible" / "artifacts" / env / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("apiVersion: v1\nkind: Config\n")

    return make


def test_destroy_refuses_without_confirmation(sandbox: Sandbox, with_kubeconfig: Callable[[str], None]) -> None:
    with_kubeconfig("dev")
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev")  # stdin is /dev/null
    assert proc.returncode != 0
    assert "no confirmation" in proc.stderr
    assert sandbox.calls() == []


def test_destroy_refuses_on_wrong_confirmation(sandbox: Sandbox, with_kubeconfig: Callable[[str], None]) -> None:
    with_kubeconfig("dev")
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", stdin="yes\n")
    assert proc.returncode != 0
    assert "did not match" in proc.stderr
    assert sandbox.calls() == []


def test_destroy_after_typed_confirmation_reverses_bootstrap(
    sandbox: Sandbox, with_kubeconfig: Callable[[str], None]
) -> None:
    with_kubeconfig("dev")
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", stdin="dev\n")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == _cleanup_calls("dev") + _destroy_calls("dev")


def test_destroy_yes_skips_the_prompt(sandbox: Sandbox, with_kubeconfig: Callable[[str], None]) -> None:
    with_kubeconfig("dev")
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == _cleanup_calls("dev") + _destroy_calls("dev")


@pytest.mark.parametrize("extra", [[], ["--yes"]])
def test_destroy_refuses_prod_without_allow_prod(sandbox: Sandbox, extra: list[str]) -> None:
    proc = sandbox.run("destroy_cluster.sh", "--env", "prod", *extra)
    assert proc.returncode != 0
    assert "refusing to destroy prod without --allow-prod" in proc.stderr
    assert sandbox.calls() == []


def test_destroy_prod_with_allow_prod_still_asks(sandbox: Sandbox, with_kubeconfig: Callable[[str], None]) -> None:
    with_kubeconfig("prod")
    refused = sandbox.run("destroy_cluster.sh", "--env", "prod", "--allow-prod")
    assert refused.returncode != 0
    assert sandbox.calls() == []
    proc = sandbox.run("destroy_cluster.sh", "--env", "prod", "--allow-prod", stdin="prod\n")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == _cleanup_calls("prod") + _destroy_calls("prod")


def test_destroy_dry_run_runs_nothing(sandbox: Sandbox) -> None:
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == []
    assert proc.stdout.count("[dry-run]") == 7


def test_destroy_skip_cluster_cleanup(sandbox: Sandbox) -> None:
    sandbox.remove_stub("kubectl")  # not needed when the cleanup is skipped
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", "--yes", "--skip-cluster-cleanup")
    assert proc.returncode == 0, proc.stderr
    assert sandbox.calls() == _destroy_calls("dev")


def test_destroy_without_kubeconfig_names_the_step(sandbox: Sandbox) -> None:
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", "--yes")
    assert proc.returncode != 0
    assert "step 'cluster-cleanup' failed" in proc.stderr
    assert "--skip-cluster-cleanup" in proc.stderr
    assert sandbox.calls() == []


def test_destroy_stops_when_cleanup_fails(sandbox: Sandbox, with_kubeconfig: Callable[[str], None]) -> None:
    with_kubeconfig("dev")
    proc = sandbox.run("destroy_cluster.sh", "--env", "dev", "--yes", fail="delete ingress")
    assert proc.returncode != 0
    assert "step 'cluster-cleanup' failed" in proc.stderr
    assert not any(c.startswith("terraform") for c in sandbox.calls())
