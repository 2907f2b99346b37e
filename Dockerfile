# syntax=docker/dockerfile:1.7
# One image for every service and worker: `eco2 serve <service>`, `eco2 worker <name>`, `eco2 migrate`.
# No HEALTHCHECK on purpose: Kubernetes probes /health and /ready, compose.yaml declares its own.

# checkov:skip=CKV_DOCKER_2:no HEALTHCHECK by design; Kubernetes probes /health and /ready, compose.yaml has per-service checks, and one image serves APIs and workers that have no HTTP port
# Both stages on the same slim Python (the project's supported 3.11); keep the two tags equal.
FROM python:3.11.14-slim-bookworm AS build
# uv from PyPI at a pinned version, like the Makefile installs it; wheels only, no compiler needed.
RUN python -m pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="eco2" \
      org.opencontainers.image.description="Eco² backend: every service and worker (eco2 serve|worker|migrate)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 eco2 \
    && useradd --system --uid 10001 --gid eco2 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eco2 \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/eco2
# The virtual environment only: no uv, no pip cache, no sources beyond the installed package.
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ECO2_DATA_DIR=/tmp/eco2
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["eco2"]
CMD ["--help"]
