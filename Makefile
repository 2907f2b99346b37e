# The two commands of the README (`make dev`, `make test`) plus the checks CI runs.
# uv is installed from PyPI on first use, so a fresh machine needs only python3 and make.
# --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE would otherwise recompile every
# dependency on every start (measured: `eco2 dev` ready in 5.5 s without, 1.9 s with).
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: dev test test-real test-infra lint sync bootstrap

bootstrap:
	@command -v uv >/dev/null 2>&1 || test -x "$(HOME)/.local/bin/uv" || python3 -m pip install --user --quiet uv

sync: bootstrap
	@$(UV) sync --frozen --quiet --compile-bytecode

dev: sync
	$(UV) run eco2 dev

# The developer loop: every Python test, infrastructure checks (marker ``infra``) left out.
test: sync
	$(UV) run pytest -m "not infra" $(PYTEST_ARGS)

test-real: sync
	ECO2_TEST_MODE=real $(UV) run pytest -m "not infra" $(PYTEST_ARGS)

# Terraform against moto, Ansible, shell scripts, rendered manifests, the image, the workflows.
test-infra: sync
	$(UV) run pytest -m infra $(PYTEST_ARGS)

lint: sync  # ruff, mypy, and the import rules (import-linter contracts in pyproject.toml)
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports
