"""The prod overlay run as local processes: each Deployment's command with its rendered environment.

Only addresses change: ``<svc>.<ns>.svc.cluster.local`` becomes the local process or data store
behind that Service, a pod's volume paths become temporary directories, AWS goes to moto and the
model provider and OAuth providers to local stand-ins. Everything else (variable names, secret keys,
users, passwords, database roles and schemas, the Ingress routes) is what the manifests say.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tests.deploy import chains, manifests
from tests.deploy.manifests import ROOT
from tests.support.servers import free_port, stop_process

ENV = "prod"
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class SecretStore:
    """The SSM parameters of the environment, as an operator would have set them."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.pem = rsa_pem()

    def __call__(self, key: str) -> str:
        if key not in self.values:
            self.values[key] = self.pem if key.endswith("/jwt-private-key") else chains.store_value(key)
        return self.values[key]


def render_environment() -> dict[str, Any]:
    paths = [f"workloads/domains/{f}/{ENV}" for f in manifests.domain_folders()]
    paths += [f"workloads/{t}/{ENV}" for t in ("secrets/external-secrets", "namespaces", "network-policies", "ingress")]
    paths += [f"platform/cr/{ENV}"]
    return {p: manifests.render(ROOT / p) for p in paths}


@contextmanager
def private_postgres(tmp: Path) -> Iterator[int]:
    """A PostgreSQL of our own (the shared one must not get our roles), run as the postgres user."""
    if not PG_BIN:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    import tempfile

    bindir = PG_BIN[-1]
    # Outside pytest's private (0700) temp tree: initdb refuses root, so the server runs as postgres.
    data = Path(tempfile.mkdtemp(prefix="eco2-rehearsal-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(data, "postgres")
    port = free_port()
    pwfile = data.parent / f"{data.name}.pw"
    pwfile.write_text("rehearsal-superuser\n")
    if as_postgres:
        shutil.chown(pwfile, "postgres")
    try:
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "scram-sha-256",
                f"--pwfile={pwfile}",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        pwfile.unlink()
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "log"),
            "-w",
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield port
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)


def psql(port: int, sql: str, database: str = "postgres") -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ],
        env={**os.environ, "PGPASSWORD": "rehearsal-superuser"},
        check=True,
        capture_output=True,
    )


def apply_data_crs(rendered: dict[str, Any], secret_data: dict[tuple[str, str], dict[str, str]], port: int) -> None:
    """What CloudNativePG does with our Cluster and Database: owner, roles (passwords from their
    Secrets, memberships), database, schemas with their owners."""
    cr = rendered[f"platform/cr/{ENV}"]
    (cluster,) = [o for o in cr if o["kind"] == "Cluster"]
    (database,) = [o for o in cr if o["kind"] == "Database"]
    owner = cluster["spec"]["bootstrap"]["initdb"]["owner"]
    psql(port, f'CREATE ROLE "{owner}" LOGIN')
    psql(port, f'CREATE DATABASE "{cluster["spec"]["bootstrap"]["initdb"]["database"]}" OWNER "{owner}"')
    for role in cluster["spec"]["managed"]["roles"]:
        password = secret_data[("postgres", role["passwordSecret"]["name"])]["password"]
        assert secret_data[("postgres", role["passwordSecret"]["name"])]["username"] == role["name"]
        psql(
            port,
            f"CREATE ROLE \"{role['name']}\" LOGIN {'INHERIT' if role.get('inherit') else 'NOINHERIT'} PASSWORD '{password}'",
        )
    for role in cluster["spec"]["managed"]["roles"]:
        for parent in role.get("inRoles", []):
            psql(port, f'GRANT "{parent}" TO "{role["name"]}"')
    for statement in cluster["spec"]["bootstrap"]["initdb"].get("postInitApplicationSQL", []):
        psql(port, statement, cluster["spec"]["bootstrap"]["initdb"]["database"])
    for schema in database["spec"]["schemas"]:
        psql(port, f'CREATE SCHEMA "{schema["name"]}" AUTHORIZATION "{schema["owner"]}"', database["spec"]["name"])


@contextmanager
def private_redis(password: str) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield port
    finally:
        stop_process(proc, 10)


@contextmanager
def private_vhost(user: str, password: str) -> Iterator[str]:
    """A vhost of our own on the shared broker, and the user the RabbitmqCluster would create."""
    vhost = f"rehearsal-{os.getpid()}"
    ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
    for args in (
        ["add_vhost", vhost],
        ["add_user", f"{user}-{os.getpid()}", password],
        ["set_permissions", "-p", vhost, f"{user}-{os.getpid()}", ".*", ".*", ".*"],
    ):
        subprocess.run([ctl, "-q", *args], check=True, capture_output=True)
    try:
        yield vhost
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True)
        subprocess.run([ctl, "-q", "delete_user", f"{user}-{os.getpid()}"], capture_output=True)


def _wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@dataclass
class Running:
    process: chains.Process
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None


def service_account_token(subject: str, audience: str) -> str:
    """A projected service-account token's shape (an unsigned JWT): moto's STS trades any token for
    credentials, so what this proves is that the pod presents one where its AWS_* variables say."""
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": subject, "aud": [audience], "iss": "https://oidc.rehearsal", "iat": now, "exp": now + 3600}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Rehearsal:
    rendered: dict[str, Any]
    tmp: Path
    addresses: dict[str, str] = field(default_factory=dict)  # "host:port" -> "127.0.0.1:port"
    rabbit_vhost: str = "/"
    rabbit_user: str = "eco2"
    overrides: dict[str, str] = field(default_factory=dict)  # the outside world (AWS, model, OAuth)
    external: dict[str, str] = field(default_factory=dict)  # public host -> local stand-in base URL
    running: list[Running] = field(default_factory=list)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # worker -> its local METRICS_PORT

    def local_env(self, process: chains.Process) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, value in process.env.items():
            if "://" in value and "svc.cluster.local" in value:
                parts = urlsplit(value)
                key = f"{parts.hostname}:{parts.port or chains.DEFAULT_PORTS[parts.scheme]}"
                assert key in self.addresses, f"{process.label}: {name} names {key}, which no local stand-in serves"
                netloc = (parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else "") + self.addresses[key]
                if parts.scheme == "amqp":
                    netloc = netloc.replace(f"{self.rabbit_user}:", f"{self.rabbit_user}-{os.getpid()}:", 1)
                    value = parts._replace(netloc=netloc, path="/" + quote(self.rabbit_vhost, safe="")).geturl()
                else:
                    value = parts._replace(netloc=netloc).geturl()
            elif "://" in value and urlsplit(value).hostname in self.external:
                parts = urlsplit(value)
                base = urlsplit(self.external[parts.hostname or ""])
                value = parts._replace(scheme=base.scheme, netloc=base.netloc).geturl()
            env[name] = value
        env["ECO2_DATA_DIR"] = str(self.tmp / process.name / "data")
        if "METRICS_PORT" in env:  # a pod has a network of its own; local processes share one
            env["METRICS_PORT"] = str(self.metrics_ports.setdefault(process.name, free_port()))
        for source, target in self.mounts(process).items():
            env = {k: v.replace(source, target) for k, v in env.items()}
        return {**env, **self.overrides}

    def mounts(self, process: chains.Process) -> dict[str, str]:
        """Secret and service-account token volumes written to files, like the kubelet would."""
        folder = f"workloads/domains/{process.folder}/{ENV}"
        (obj,) = [
            o for o in self.rendered[folder] if o["kind"] == process.kind and o["metadata"]["name"] == process.name
        ]
        spec = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        out = {}
        for mount in spec["containers"][0].get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "secret" in volume:
                target = self.tmp / process.name / mount["name"]
                target.mkdir(parents=True, exist_ok=True)
                data = self.secret_data[(process.namespace, volume["secret"]["secretName"])]
                for key, value in data.items():
                    (target / key).write_text(value)
                out[mount["mountPath"]] = str(target)
            elif "projected" in volume:
                target = self.tmp / process.name / mount["name"]
                target.mkdir(parents=True, exist_ok=True)
                subject = f"system:serviceaccount:{process.namespace}:{spec['serviceAccountName']}"
                for source in volume["projected"]["sources"]:
                    token = source["serviceAccountToken"]
                    (target / token["path"]).write_text(service_account_token(subject, token["audience"]))
                out[mount["mountPath"]] = str(target)
        return out

    secret_data: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def command(self, process: chains.Process, port: int | None) -> list[str]:
        args = list(process.args)
        if args[0] == "serve":
            args += ["--host", "127.0.0.1", "--port", str(port)]
        return [sys.executable, "-m", "services.cli", *args]

    def run_job(self, process: chains.Process) -> None:
        log = self.tmp / f"{process.name}.log"
        with log.open("w") as out:
            code = subprocess.run(
                self.command(process, None),
                env=self._env(process),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                timeout=180,
            ).returncode
        assert code == 0, f"{process.label} failed:\n{log.read_text()[-3000:]}"

    def start(self, process: chains.Process, port: int | None) -> None:
        log = self.tmp / f"{process.name}.log"
        popen = subprocess.Popen(
            self.command(process, port),
            env=self._env(process),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.running.append(Running(process, popen, log, port))

    def _env(self, process: chains.Process) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH", "TMPDIR"}}
        return {**keep, **self.local_env(process)}

    def stop(self) -> None:
        for item in self.running:
            if item.popen.poll() is None:
                item.popen.send_signal(signal.SIGTERM)
        for item in self.running:
            try:
                item.popen.wait(20)
            except subprocess.TimeoutExpired:
                item.popen.kill()

    def logs(self) -> str:
        return "\n".join(
            f"--- {r.process.label} (exit {r.popen.poll()})\n{r.log.read_text()[-2500:]}" for r in self.running
        )


class IngressTransport(httpx.AsyncBaseTransport):
    """Routes like the ALB: the longest Ingress path prefix of the request's host picks the Service,
    whose local process gets the request with the ALB's forwarding headers."""

    def __init__(self, routes: dict[tuple[str, str], str]) -> None:
        self.routes = routes  # (host, prefix) -> "127.0.0.1:port"
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        matches = [
            (prefix, target)
            for (h, prefix), target in self.routes.items()
            if h == host and (path == prefix or path.startswith(prefix + "/"))
        ]
        if not matches:
            return httpx.Response(404, text="no ingress rule (the ALB answers 404)")
        _, target = max(matches, key=lambda m: len(m[0]))
        headers = httpx.Headers(request.headers)
        headers["X-Forwarded-Proto"] = request.url.scheme
        headers["X-Forwarded-For"] = "203.0.113.7"
        forwarded = httpx.Request(
            request.method,
            request.url.copy_with(scheme="http", netloc=target.encode()),
            headers=headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        response = await self.inner.handle_async_request(forwarded)
        # The client sees the public URL (cookies are kept for the public host, as in a browser).
        response.request = request
        return response


def ingress_routes(
    rendered: dict[str, Any], services: dict[tuple[str, int], chains.Endpoint], local: dict[str, str]
) -> dict[tuple[str, str], str]:
    routes = {}
    for ing in rendered[f"workloads/ingress/{ENV}"]:
        ns = ing["metadata"]["namespace"]
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                port = backend["port"].get("number")
                candidates = [
                    (h, p)
                    for (h, p) in services
                    if h == f"{backend['name']}.{ns}.svc.cluster.local" and (port is None or p == port)
                ]
                assert candidates, f"ingress {path['path']} -> {backend['name']}: no such Service"
                routes[(rule["host"], path["path"])] = local[f"{candidates[0][0]}:{candidates[0][1]}"]
    return routes


# Start-up bound for every API at once. On a quiet machine they are ready in seconds; on a loaded CI
# machine (2 cores shared with other jobs) a dozen Python processes importing the app took over 60 s.
# A process that exits is reported at once whatever the bound: only a slow start waits this long.
READY_SECONDS = float(os.environ.get("ECO2_REHEARSAL_READY_SECONDS", "300"))
PROBE_SECONDS = 5.0  # one /ready answer (a loaded process may answer slowly, not wrongly)


def _tail(item: Running, chars: int = 3000) -> str:
    try:
        return item.log.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc})"


def _exited(items: list[Running]) -> None:
    """Fail at once if any process has exited: a crash is a start-up failure, never a slow start."""
    for item in items:
        code = item.popen.poll()
        if code is not None:
            raise AssertionError(f"{item.process.label} exited with {code} during start-up:\n{_tail(item)}")


def wait_all_ready(items: list[Running], timeout: float | None = None, interval: float = 0.3) -> float:
    """Wait until every process with a port answers 200 on ``/ready``; returns the seconds it took.

    Every round checks every process (workers too) for an exit first. Missing the bound names each
    process not yet ready, its last answer and its log tail, with the machine's load."""
    bound = READY_SECONDS if timeout is None else timeout
    started = time.monotonic()
    pending = {id(item): item for item in items if item.port}
    last = dict.fromkeys(pending, "no answer yet")
    with httpx.Client(timeout=PROBE_SECONDS) as client:
        while pending:
            _exited(items)
            for key, item in list(pending.items()):
                try:
                    answer = client.get(f"http://127.0.0.1:{item.port}/ready")
                except httpx.HTTPError as exc:
                    last[key] = repr(exc)
                    continue
                if answer.status_code == 200:
                    del pending[key]
                else:
                    last[key] = f"{answer.status_code} {answer.text[:300]}"
            if not pending:
                break
            waited = time.monotonic() - started
            if waited > bound:
                _exited(items)
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                report = "\n".join(
                    f"--- {item.process.label} on :{item.port}: {last[key]}\n{_tail(item)}"
                    for key, item in pending.items()
                )
                raise AssertionError(
                    f"{len(pending)} process(es) not ready after {waited:.0f} s "
                    f"(bound {bound:.0f} s, ECO2_REHEARSAL_READY_SECONDS; load average {load}):\n{report}"
                )
            time.sleep(interval)
    return time.monotonic() - started


__all__ = ["ExitStack", "re"]
