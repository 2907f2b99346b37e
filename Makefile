# The two commands of the README (`make dev`, `make test`) plus the checks CI runs.
# uv is installed from PyPI on first use, so a fresh machine needs only python3 and make.
# --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE would otherwise recompile every
# dependency on every start (measured: `eco2 dev` ready in 5.5 s without, 1.9 s with).
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: dev test test-real test-infra drill release-queries lint sync bootstrap

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

# The backup/restore drill (tests/durability): private PostgreSQL + barman-cloud + moto S3, prints
# what it restored and how long it took.
drill: sync
	ECO2_DRILL=1 $(UV) run pytest tests/durability -m drill -s $(PYTEST_ARGS)

# At a release: record the SQL this code issues (real-mode suite) as the corpus the next release's
# migrations are checked against (tests/migrations/test_previous_release.py, docs/migrations.md).
release-queries: sync
	ECO2_TEST_MODE=real ECO2_RECORD_QUERIES=tests/migrations/previous_release.json $(UV) run pytest $(PYTEST_ARGS)

lint: sync  # ruff, mypy, the import rules (import-linter contracts in pyproject.toml), the migration lint
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports
	$(UV) run python scripts/ci/lint_migrations.py
