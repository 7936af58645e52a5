"""The observability kit (docker-compose.yml, deploy/): its files agree with each other, and every
metric a dashboard panel queries is exported by a live gateway's /metrics.

No container runs here: the files are parsed, and the gateway runs in-process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from tests.conftest import running_gateway

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROVISIONING_DIR = ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"
DASHBOARD_FILE = DASHBOARDS_DIR / "veloz-gateway.json"

GATEWAY_SERVICE = "gateway"
GATEWAY_PORT = 8080
SCRAPE_INTERVAL = "5s"

# Metric names in PromQL: the gateway's own, prometheus-fastapi-instrumentator's and the process
# collector's. `\b` keeps `http_...` from matching inside `veloz_http_...`.
METRIC_NAME = re.compile(r"\b(?:veloz|http|process)_[a-z0-9_]+\b")
# A histogram (or summary) is stored by Prometheus as these series, never under its own name.
SERIES_SUFFIXES: dict[str, frozenset[str]] = {
    "_bucket": frozenset({"histogram"}),
    "_sum": frozenset({"histogram", "summary"}),
    "_count": frozenset({"histogram", "summary"}),
}
# What the dashboard must show (task list of the kit); a panel dropping one fails here.
REQUIRED_METRICS = frozenset(
    {
        "veloz_http_requests_total",
        "veloz_http_request_duration_seconds_bucket",
        "veloz_orders_total",
        "veloz_fills_total",
        "veloz_cancels_total",
        "veloz_active_orders",
        "veloz_order_latency_seconds_bucket",
        "veloz_sse_clients",
        "veloz_rate_limit_rejections_total",
        "veloz_auth_failures_total",
        "veloz_audit_queue_depth",
        "veloz_engine_running",
        "veloz_gateway_uptime_seconds",
    }
)
REQUIRED_ENV = re.compile(r"^\$\{(?P<name>[A-Z_]+):\?[^}]+\}$")  # ${NAME:?message}


# --- loading ---------------------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} must hold a mapping"
    return data


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE_FILE)


def _service(name: str) -> dict[str, Any]:
    service = _compose()["services"][name]
    assert isinstance(service, dict)
    return service


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _provisioning(kind: str) -> list[dict[str, Any]]:
    """Every provisioning file of one kind (datasources, dashboards), parsed."""
    files = sorted((PROVISIONING_DIR / kind).glob("*.y*ml"))
    assert files, f"no provisioning files in {PROVISIONING_DIR / kind}"
    return [_yaml(path) for path in files]


def _datasources() -> list[dict[str, Any]]:
    return [source for data in _provisioning("datasources") for source in data["datasources"]]


def _providers() -> list[dict[str, Any]]:
    return [provider for data in _provisioning("dashboards") for provider in data["providers"]]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a host path relative to the repository, or a volume name)."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):  # the long syntax
            source, target = str(volume.get("source", "")), str(volume["target"])
        else:
            source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            source = (ROOT / source).resolve().relative_to(ROOT).as_posix()
        mounts[str(PurePosixPath(target))] = source
    return mounts


def _repo_path(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield f"panel {panel['title']!r} target {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            yield f"variable {variable['name']!r}", text


def referenced_metrics(dashboard: dict[str, Any]) -> set[str]:
    return {name for _, query in _queries(dashboard) for name in METRIC_NAME.findall(query)}


# --- checking names against an exposition ----------------------------------------------------


def exposition_names(text: str) -> tuple[dict[str, str], set[str]]:
    """Family types from the `# TYPE` lines, and the name of every sample."""
    types: dict[str, str] = {}
    samples: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return types, samples


def metric_problem(name: str, types: dict[str, str], samples: set[str]) -> str | None:
    """Why `name` would find no series in Prometheus scraping this exposition, or None.

    A name is fine when it is a sample name, a counter/gauge family (a labelled family has
    no samples until its first use), or `<family>_bucket|_sum|_count` of a histogram (summary).
    A histogram's bare family name is not: Prometheus stores no series under it.
    """
    if name in samples:
        return None
    kind = types.get(name)
    if kind is not None:
        if kind in ("histogram", "summary"):
            return f"{name} is a {kind}: query {name}_bucket, _sum or _count"
        return None
    for suffix, kinds in SERIES_SUFFIXES.items():
        family = name.removesuffix(suffix)
        if family != name and types.get(family) in kinds:
            return None
    return f"{name} is not exported"


def missing_metrics(names: set[str], exposition: str) -> dict[str, str]:
    types, samples = exposition_names(exposition)
    problems = {name: metric_problem(name, types, samples) for name in sorted(names)}
    return {name: problem for name, problem in problems.items() if problem is not None}


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_runs_gateway_prometheus_and_grafana() -> None:
    services = _compose()["services"]
    assert {GATEWAY_SERVICE, "prometheus", "grafana"} <= set(services)
    assert str(services["prometheus"]["image"]).startswith("prom/prometheus:")
    assert str(services["grafana"]["image"]).startswith("grafana/grafana:")


def test_gateway_keeps_auth_on_with_a_required_password() -> None:
    gateway = _service(GATEWAY_SERVICE)
    env = _env(gateway)
    assert env["VELOZ_AUTH_ENABLED"] == "true"
    match = REQUIRED_ENV.match(env["VELOZ_ADMIN_PASSWORD"])
    assert match is not None and match["name"] == "VELOZ_ADMIN_PASSWORD"
    assert any(str(port).endswith(f":{GATEWAY_PORT}") for port in gateway["ports"])


def test_every_port_is_published_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_grafana_admin_password_is_required_from_the_environment() -> None:
    env = _env(_service("grafana"))
    match = REQUIRED_ENV.match(env["GF_SECURITY_ADMIN_PASSWORD"])
    assert match is not None and match["name"] == "GRAFANA_ADMIN_PASSWORD"


# --- Prometheus ------------------------------------------------------------------------------


def test_prometheus_mounts_its_config() -> None:
    prometheus = _service("prometheus")
    flags = [str(arg) for arg in prometheus.get("command", [])]
    config = next(
        (flag.split("=", 1)[1] for flag in flags if flag.startswith("--config.file=")),
        "/etc/prometheus/prometheus.yml",  # the image's default
    )
    assert _mounts(prometheus).get(config) == _repo_path(PROMETHEUS_FILE)


def test_prometheus_scrapes_the_gateway_metrics_every_5s() -> None:
    config = _yaml(PROMETHEUS_FILE)
    default_interval = config.get("global", {}).get("scrape_interval", "1m")
    wanted = f"{GATEWAY_SERVICE}:{GATEWAY_PORT}"
    jobs = [
        job
        for job in config["scrape_configs"]
        if any(wanted in static.get("targets", []) for static in job.get("static_configs", []))
    ]
    assert len(jobs) == 1, f"expected one scrape job for {wanted}"
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scheme", "http") == "http"
    assert job.get("scrape_interval", default_interval) == SCRAPE_INTERVAL


# --- Grafana ---------------------------------------------------------------------------------


def test_grafana_mounts_provisioning_and_dashboards() -> None:
    mounts = _mounts(_service("grafana"))
    assert mounts.get("/etc/grafana/provisioning") == _repo_path(PROVISIONING_DIR)
    providers = _providers()
    assert providers, "no dashboard provider"
    for provider in providers:
        assert provider.get("type", "file") == "file"
        assert mounts.get(str(PurePosixPath(provider["options"]["path"]))) == _repo_path(
            DASHBOARDS_DIR
        ), f"provider {provider['name']!r} reads a folder that is not deploy/grafana/dashboards"
    home = _env(_service("grafana")).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home is not None:
        folder, file_name = str(PurePosixPath(home).parent), PurePosixPath(home).name
        assert mounts.get(folder) == _repo_path(DASHBOARDS_DIR)
        assert (DASHBOARDS_DIR / file_name).is_file()


def test_datasource_is_the_kit_prometheus_with_a_fixed_uid() -> None:
    sources = [source for source in _datasources() if source["type"] == "prometheus"]
    assert len(sources) == 1
    source = sources[0]
    assert source.get("uid"), "the datasource needs a fixed uid for the dashboard to refer to"
    assert source["url"] == "http://prometheus:9090"  # the compose service


def test_every_panel_uses_the_provisioned_datasource() -> None:
    uid = next(s["uid"] for s in _datasources() if s["type"] == "prometheus")
    dashboard = _dashboard()
    checked = 0
    for panel in _panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("datasource", {}).get("uid") == uid, f"panel {panel['title']!r}"
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", {"uid": uid})["uid"] == uid, panel["title"]
        checked += 1
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            assert variable["datasource"]["uid"] == uid, f"variable {variable['name']!r}"
    assert checked >= 10


def test_dashboard_shows_what_the_kit_promises() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    missing = REQUIRED_METRICS - referenced_metrics(dashboard)
    assert not missing, f"no panel queries {sorted(missing)}"


# --- the names checked against a live gateway ------------------------------------------------


def test_metric_check_rejects_unknown_names_and_bare_histograms() -> None:
    exposition = "\n".join(
        [
            "# TYPE veloz_orders_total counter",
            'veloz_orders_total{side="BUY",type="limit"} 1.0',
            "# TYPE veloz_fills_total counter",  # labelled, no samples yet
            "# TYPE veloz_order_latency_seconds histogram",
            'veloz_order_latency_seconds_bucket{le="+Inf"} 1.0',
            "veloz_order_latency_seconds_count 1.0",
            "veloz_order_latency_seconds_sum 0.01",
            "# TYPE veloz_http_request_duration_seconds histogram",  # labelled, no samples yet
        ]
    )
    assert (
        missing_metrics(
            {
                "veloz_orders_total",
                "veloz_fills_total",
                "veloz_order_latency_seconds_bucket",
                "veloz_order_latency_seconds_sum",
                "veloz_http_request_duration_seconds_bucket",
            },
            exposition,
        )
        == {}
    )
    assert set(
        missing_metrics(
            {
                "veloz_no_such_metric_total",
                "veloz_orders",  # the family name without _total is no series
                "veloz_order_latency_seconds",  # a bare histogram name
                "veloz_orders_total_bucket",  # a counter has no buckets
            },
            exposition,
        )
    ) == {
        "veloz_no_such_metric_total",
        "veloz_orders",
        "veloz_order_latency_seconds",
        "veloz_orders_total_bucket",
    }


def test_http_names_are_not_found_inside_veloz_names() -> None:
    query = 'sum(rate(veloz_http_requests_total{status=~"5.."}[1m])) / http_requests_total'
    assert METRIC_NAME.findall(query) == ["veloz_http_requests_total", "http_requests_total"]


async def test_every_dashboard_metric_is_exported_by_a_live_gateway(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_gateway(make_settings()) as gateway:
        order = await gateway.client.post(
            "/api/order",
            json={"side": "BUY", "qty": 0.01, "price": 40000, "client_order_id": "kit-1"},
        )
        assert order.status_code == 200 and order.json()["ok"] is True
        answer = await gateway.client.get("/metrics")
    assert answer.status_code == 200
    exposition = answer.text
    list(text_string_to_metric_families(exposition))  # well-formed exposition

    referenced = referenced_metrics(_dashboard())
    assert referenced >= REQUIRED_METRICS
    missing = missing_metrics(referenced, exposition)
    assert not missing, "dashboard queries metrics the gateway does not export:\n" + "\n".join(
        f"  {problem}" for problem in missing.values()
    )
    # The check itself would notice a panel naming a metric that does not exist.
    assert set(missing_metrics({"veloz_orders_placed_total"}, exposition)) == {
        "veloz_orders_placed_total"
    }
