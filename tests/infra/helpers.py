"""Helpers for the infrastructure checks (Terraform, Ansible, deployment scripts).

They need no cloud and no internet: Terraform gets the AWS provider from a local
filesystem mirror (discovered at run time, never a committed path) and talks to
moto's server on loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
ANSIBLE_DIR = REPO_ROOT / "ansible"
SCRIPTS_DIR = REPO_ROOT / "scripts" / "deployment"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Provider constraint in every required_providers block ("~> 5.100").
AWS_PROVIDER_MAJOR, AWS_PROVIDER_MIN_MINOR = 5, 100
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"

# Places a machine image or an operator typically keeps a provider mirror.
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "/opt/terraform/plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
)


def venv_tool(name: str) -> str:
    """A console script installed in the project's environment (ansible-*, shellcheck)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found; run `uv sync` (it comes from the project's dev dependencies)")
    return found


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 600,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, input=input_text, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def _version_ok(version: str) -> bool:
    try:
        major, minor, *_ = (int(p) for p in version.split("."))
    except ValueError:
        return False
    return major == AWS_PROVIDER_MAJOR and minor >= AWS_PROVIDER_MIN_MINOR


def find_provider_mirror() -> tuple[Path, str] | None:
    """Return (mirror root, provider version) of a usable local AWS provider mirror.

    Accepts both layouts Terraform reads: unpacked
    (<root>/registry.terraform.io/hashicorp/aws/<ver>/linux_amd64/) and packed
    (<root>/registry.terraform.io/hashicorp/aws/terraform-provider-aws_<ver>_linux_amd64.zip).
    ECO2_TF_PLUGIN_MIRROR overrides the search.
    """
    override = os.environ.get("ECO2_TF_PLUGIN_MIRROR")
    candidates = [override] if override else list(MIRROR_CANDIDATES)
    for raw in candidates:
        root = Path(raw).expanduser()
        provider_dir = root / AWS_PROVIDER
        if not provider_dir.is_dir():
            continue
        versions = [d.name for d in provider_dir.iterdir() if (d / "linux_amd64").is_dir()]
        versions += [z.name.split("_")[1] for z in provider_dir.glob("terraform-provider-aws_*_linux_amd64.zip")]
        usable = sorted((v for v in versions if _version_ok(v)), key=lambda v: tuple(map(int, v.split("."))))
        if usable:
            return root, usable[-1]
    if override:
        pytest.fail(
            f"ECO2_TF_PLUGIN_MIRROR={override} holds no AWS provider {AWS_PROVIDER_MAJOR}.x "
            f">= {AWS_PROVIDER_MAJOR}.{AWS_PROVIDER_MIN_MINOR} for linux_amd64"
        )
    return None


def terraform_init(terraform_bin: str, workdir: Path, env: dict[str, str], *, backend: bool) -> None:
    cmd = [terraform_bin, "init", "-input=false", "-no-color"]
    if not backend:
        cmd.append("-backend=false")
    proc = run(cmd, cwd=workdir, env=env, check=False, timeout=300)
    if proc.returncode != 0:
        pytest.fail(
            "terraform init could not install the AWS provider. Neither a local filesystem mirror "
            f"(searched ECO2_TF_PLUGIN_MIRROR, {', '.join(MIRROR_CANDIDATES)}) nor the Terraform "
            "registry is usable on this machine. Point ECO2_TF_PLUGIN_MIRROR at a mirror holding "
            f"{AWS_PROVIDER} {AWS_PROVIDER_MAJOR}.x >= {AWS_PROVIDER_MAJOR}.{AWS_PROVIDER_MIN_MINOR}.\n"
            f"--- terraform init stderr ---\n{proc.stderr[-4000:]}"
        )


def copy_terraform_tree(dest: Path) -> Path:
    """Work on a copy so init never writes .terraform/ or lock files into the checkout."""
    target = dest / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        target,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
    )
    return target


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
