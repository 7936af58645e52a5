"""Real PostgreSQL and Redis servers on 127.0.0.1 for the tests, in throw-away directories.

PostgreSQL comes from Debian's postgresql-15 package (initdb and pg_ctl), Redis from
redis-server. PostgreSQL refuses to run as root: then the server runs as the `postgres` system
user in a directory it owns.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "veloz"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
_database_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(command: list[str]) -> list[str]:
    if os.getuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PostgresServer:
    """One PostgreSQL cluster: `initdb` into a temporary directory, `pg_ctl start` on a port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="veloz-pg-"))
        self.port = 0
        if os.getuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        self._run(
            [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", PG_USER, "--auth=trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"]
        )  # fmt: skip
        for _attempt in range(3):  # another process may take the port first
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off -c max_connections=200"
            )
            log = str(self.root / "server.log")
            command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", log, "-o", options]
            command += ["-w", "-t", "30", "start"]
            started = subprocess.run(
                _as_server_user(command),
                capture_output=True,
                text=True,
                check=False,
                cwd=self.root,
            )
            if started.returncode == 0:
                return
        raise RuntimeError(f"PostgreSQL did not start: {self.log_text()}")

    def log_text(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def _run(self, command: list[str]) -> None:
        subprocess.run(_as_server_user(command), check=True, capture_output=True, cwd=self.root)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        name = f"veloz_test_{os.getpid()}_{next(_database_numbers)}"
        conninfo = f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data_dir.exists():
            subprocess.run(
                _as_server_user(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
                ),
                capture_output=True,
                check=False,
                cwd=self.root,
            )
        shutil.rmtree(self.root, ignore_errors=True)


class ForegroundServer:
    """A server process we started in the foreground, with its throw-away directory."""

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def stop_process(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        self.stop_process()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(ForegroundServer):
    """One redis-server without persistence on a free loopback port."""

    def __init__(self) -> None:
        super().__init__("veloz-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        for _attempt in range(3):
            self.port = free_port()
            with (self.root / "server.log").open("ab") as log:
                self.proc = subprocess.Popen(
                    ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", str(self.root)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._answers():
                    return
                time.sleep(0.02)
            self.stop_process()
        raise RuntimeError("redis-server did not start: " + (self.root / "server.log").read_text())

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)


class NginxBalancer(ForegroundServer):
    """nginx in the foreground with the replicas profile's site config, its upstream servers
    pointed at gateways on loopback."""

    def __init__(self, site_config: Path, upstreams: list[int]) -> None:
        super().__init__("veloz-nginx-")
        self._site = site_config.read_text(encoding="utf-8")
        self._upstreams = upstreams

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        site = self._site
        for name, port in zip(("gateway-a:8080", "gateway-b:8080"), self._upstreams, strict=True):
            site = site.replace(f"server {name}", f"server 127.0.0.1:{port}")
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        (self.root / "site.conf").write_text(site, encoding="utf-8")
        temp = "".join(
            f"    {kind}_temp_path {self.root / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        main = self.root / "nginx.conf"
        main.write_text(
            ("user root;\n" if os.getuid() == 0 else "")
            # One process: stopping it leaves no worker behind.
            + f"daemon off;\nmaster_process off;\npid {self.root / 'nginx.pid'};\n"
            f"error_log {self.root / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log off;\n{temp}    include {self.root / 'site.conf'};\n}}\n",
            encoding="utf-8",
        )
        return main

    def start(self, timeout: float = 10.0) -> None:
        for _attempt in range(3):
            self.port = free_port()
            config = self._write_config()
            with (self.root / "server.log").open("ab") as log:
                self.proc = subprocess.Popen(
                    [NGINX, "-p", str(self.root), "-c", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return
                except OSError:
                    time.sleep(0.02)
            self.stop_process()
        raise RuntimeError("nginx did not start: " + self.log_text())

    def log_text(self) -> str:
        return "".join(
            (self.root / name).read_text(errors="replace")
            for name in ("server.log", "error.log")
            if (self.root / name).exists()
        )
