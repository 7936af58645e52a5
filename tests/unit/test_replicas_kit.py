"""The `replicas` compose profile: two gateways on PostgreSQL and Redis behind nginx, with a
Prometheus scraping both; the files agree with each other and with the gateway's settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ("gateway-a", "gateway-b")


def _services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services: dict[str, Any] = compose["services"]
    return services


def test_the_profile_holds_two_replicas_postgres_redis_a_balancer_and_prometheus() -> None:
    services = _services()
    profile = {name for name, s in services.items() if "replicas" in s.get("profiles", [])}
    assert profile == {*REPLICAS, "postgres", "redis", "replicas-lb", "replicas-prometheus"}
    # The single-gateway kit stays as it was: no profile, always started.
    assert "profiles" not in services["gateway"]


def test_replicas_share_database_redis_and_secrets() -> None:
    services = _services()
    envs = [services[name]["environment"] for name in REPLICAS]
    assert envs[0] == envs[1]
    env = envs[0]
    assert env["VELOZ_DATABASE_URL"].startswith("postgresql+psycopg://veloz:")
    assert env["VELOZ_DATABASE_URL"].endswith("@postgres:5432/veloz")
    assert env["VELOZ_REDIS_URL"] == "redis://redis:6379/0"
    assert env["VELOZ_AUTH_ENABLED"] == "true"
    for name in ("VELOZ_JWT_SECRET", "VELOZ_API_KEY_SECRET", "VELOZ_MASTER_KEY"):
        assert env[name] == "${" + name + ":-}"  # refused at start when empty
    volumes = {services[name]["volumes"][0].split(":")[0] for name in REPLICAS}
    assert len(volumes) == 2  # each replica its own data directory
    for name in REPLICAS:
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}


def test_the_balancer_reaches_both_replicas_and_streams_unbuffered() -> None:
    services = _services()
    mount = services["replicas-lb"]["volumes"][0].split(":")
    config = (ROOT / mount[0]).read_text(encoding="utf-8")
    assert mount[1] == "/etc/nginx/conf.d/default.conf"
    upstream = re.search(r"upstream veloz_gateways \{(.*?)\}", config, re.S)
    assert upstream is not None
    assert re.findall(r"server (\S+)", upstream.group(1)) == [f"{n}:8080" for n in REPLICAS]
    stream = re.search(r"location = /api/stream \{(.*?)\}", config, re.S)
    assert stream is not None
    assert "proxy_buffering off;" in stream.group(1)
    assert "proxy_read_timeout 1h;" in stream.group(1)
    assert services["replicas-lb"]["ports"] == ["127.0.0.1:8090:8080"]


def test_the_profile_prometheus_scrapes_every_replica() -> None:
    service = _services()["replicas-prometheus"]
    source, target = service["volumes"][0].split(":")[:2]
    assert target == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / source).read_text(encoding="utf-8"))
    targets = [t for job in config["scrape_configs"] for s in job["static_configs"]
               for t in s["targets"]]  # fmt: skip
    assert {f"{n}:8080" for n in REPLICAS} <= set(targets)
