"""Prometheus can scrape what the code serves, and the dashboard asks for metrics
the code defines.

Sources of truth: the metric objects in the code (found by parsing every module of
api/, core/ and workers/ that imports prometheus_client), the API's route table,
the settings behind WORKER_METRICS_PORT, and the dashboard file shipped in the chart.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DASHBOARD = ("dashboards", "twitter.json")
METRICS_PATH = "/metrics"
# Where the brief says the metrics live; each must define some (a parse that finds
# nothing must not pass as "no metric is missing").
METRIC_MODULES = ("core/metrics.py", "core/queue_stats.py")
# Sample suffixes each prometheus_client type exposes (besides _created).
CLIENT_TYPES = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum"),
    "Summary": ("", "_count", "_sum"),
    "Info": ("_info",),
    "Enum": ("",),
    "CounterMetricFamily": ("_total",),
    "GaugeMetricFamily": ("",),
    "HistogramMetricFamily": ("_bucket", "_count", "_sum"),
    "SummaryMetricFamily": ("_count", "_sum"),
    "InfoMetricFamily": ("_info",),
    "StateSetMetricFamily": ("",),
}
# Labels Prometheus attaches to every target; an expression may use them freely.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service"}
PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


@dataclass(eq=False)  # hashable: one object per family
class Family:
    name: str
    kind: str
    module: str
    labels: set[str] = field(default_factory=set)

    def samples(self) -> set[str]:
        base = self.name
        if self.kind.startswith("Counter") and base.endswith("_total"):
            base = base[: -len("_total")]
        names = {base + suffix for suffix in CLIENT_TYPES[self.kind]}
        if self.kind in ("Counter", "Histogram", "Summary"):
            names.add(base + "_created")
        return names


def _labels_of(call: ast.Call, constants: dict) -> set[str]:
    node = call.args[2] if len(call.args) > 2 else None
    for kw in call.keywords:
        if kw.arg in ("labelnames", "labels"):
            node = kw.value
    if node is None:
        return set()
    if isinstance(node, ast.Name):
        return set(constants[node.id])
    return set(ast.literal_eval(node))


def code_metrics(root) -> dict[str, Family]:
    """Every metric family the application defines, by name."""
    families: dict[str, Family] = {}
    for package in ("api", "core", "workers"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            types = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "prometheus_client"
                ):
                    for alias in node.names:
                        if alias.name in CLIENT_TYPES:
                            types[alias.asname or alias.name] = alias.name
            if not types:
                continue
            constants = {}
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        with contextlib.suppress(ValueError):
                            constants[target.id] = ast.literal_eval(node.value)
            module = str(path.relative_to(root))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in types
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    continue
                name = node.args[0].value
                assert name not in families, f"{name} defined twice"
                families[name] = Family(
                    name, types[node.func.id], module, _labels_of(node, constants)
                )
    for module in METRIC_MODULES:
        assert any(f.module == module for f in families.values()), module
    return families


def dramatiq_middleware_metrics() -> dict[str, Family]:
    """The families of Dramatiq's own Prometheus middleware (parsed, not imported:
    importing it creates its database directory)."""
    import importlib.util

    path = importlib.util.find_spec("dramatiq.middleware.prometheus").origin
    tree = ast.parse(Path(path).read_text())
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") in CLIENT_TYPES
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = node.args[0].value
            found[name] = Family(name, node.func.attr, path, _labels_of(node, {}))
    assert found, f"no metrics found in {path}"
    return found


def test_job_metrics_keep_dramatiq_names_and_labels(k8s):
    """Ours replace Dramatiq's Prometheus middleware (docs/observability.md), so
    community dashboards for it must find the same series."""
    theirs = {
        sample: family
        for family in dramatiq_middleware_metrics().values()
        for sample in family.samples()
    }
    ours = [
        f for f in code_metrics(k8s.root).values() if f.name.startswith("dramatiq_")
    ]
    assert ours
    for family in ours:
        for sample in family.samples():
            assert sample in theirs, f"{sample}: not a Dramatiq metric"
            assert theirs[sample].kind == family.kind, sample
            assert theirs[sample].labels == family.labels, sample


STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
)
IDENT = re.compile(r"(?<![\w.$:])[A-Za-z_:][\w:]*")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression refers to."""
    text = STRING.sub('""', expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries, $__rate_interval
    for group in GROUPING.findall(text):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    text = GROUPING.sub(" ", text)
    metrics = set()
    for match in IDENT.finditer(text):
        name = match.group()
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        if name.lower() not in PROMQL_KEYWORDS:
            metrics.add(name)
    return metrics, labels


def test_promql_reader_finds_metrics_and_labels():
    metrics, labels = promql_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(http_x_bucket{status=~"5.."}'
        "[$__rate_interval]))) / on (queue) group_left max(y_total offset 5m) > 0"
    )
    assert metrics == {"http_x_bucket", "y_total"}
    assert labels == {"le", "route", "status", "queue"}


def dashboard_targets(dashboard: dict):
    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels") or [])

    for panel in walk(dashboard["panels"]):
        for target in panel.get("targets") or []:
            yield panel, target


@pytest.fixture(scope="module")
def dashboard(k8s) -> dict:
    path = k8s.chart.joinpath(*DASHBOARD)
    assert path.exists(), f"{path} is missing"
    return json.loads(path.read_text())


def test_dashboard_queries_only_metrics_and_labels_the_code_defines(k8s, dashboard):
    families = code_metrics(k8s.root)
    samples = {s: f for f in families.values() for s in f.samples()}
    used_families = set()
    problems = []
    targets = list(dashboard_targets(dashboard))
    assert targets, "a dashboard without queries"
    for panel, target in targets:
        expr = target["expr"]
        where = f"panel {panel['title']!r}"
        metrics, labels = promql_names(expr)
        if not metrics:
            problems.append(f"{where}: no metric in {expr!r}")
        unknown = metrics - set(samples)
        if unknown:
            problems.append(f"{where}: unknown metrics {sorted(unknown)}")
        known = {samples[m] for m in metrics & set(samples)}
        used_families |= {f.name for f in known}
        allowed = set().union(*(f.labels for f in known)) | TARGET_LABELS | {"le"}
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        if labels - allowed or legend - allowed:
            bad = sorted((labels | legend) - allowed)
            problems.append(f"{where}: labels {bad} not on {sorted(metrics)}")
    assert not problems, "\n".join(problems)
    # And every metric the code defines has a panel.
    missing = set(families) - used_families
    assert not missing, f"metrics without a dashboard panel: {sorted(missing)}"


def test_dashboard_is_portable(dashboard):
    """No Grafana-instance specifics: the data source is a template variable."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["uid"] and "id" not in dashboard
    for panel, _target in dashboard_targets(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_ships_as_a_sidecar_configmap_only_when_enabled(helm, k8s, dashboard):
    assert not (k8s.root / "docs" / "grafana-dashboard.json").exists(), "one copy"
    default = helm.render_mode("default")
    assert not [
        c
        for c in default.of_kind("ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    rendered = helm.render_mode("all-features")
    configmaps = [
        c
        for c in rendered.of_kind("ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(configmaps) == 1
    cm = configmaps[0]
    assert (
        cm["metadata"]["labels"]["team"] == "timelines"
    )  # metrics.grafanaDashboard.labels
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Twitter"}
    assert list(cm["data"]) == ["twitter.json"]
    assert json.loads(cm["data"]["twitter.json"]) == dashboard
    assert len(cm["data"]["twitter.json"].encode()) < 900 * 1024, "ConfigMap limit"


# -- scraping --------------------------------------------------------------------


def _named_ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports") or []}


def _metrics_targets(rendered, k8s):
    """(deployment, container, port name) of every process that serves metrics."""
    for obj in rendered.of_kind("Deployment"):
        component = obj["metadata"]["labels"].get("app.kubernetes.io/component", "")
        container = k8s.containers(obj, init=False)[0]
        if component == "api":
            yield obj, container, "metrics"  # METRICS_PORT, not the API port
        elif component.startswith("worker-"):
            yield obj, container, "metrics"


def api_routes(k8s) -> set[str]:
    tree = ast.parse((k8s.root / "api" / "app.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == "add_route"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


@pytest.mark.parametrize("mode", ["default", "all-features", "external"])
def test_pods_carry_scrape_annotations_for_the_ports_that_serve_metrics(
    helm, k8s, mode
):
    from core.settings import Settings

    # The API port never serves metrics (the gunicorn master does, on METRICS_PORT).
    assert METRICS_PATH not in api_routes(k8s)
    rendered = helm.render_mode(mode)
    config = rendered.get("ConfigMap", "twitter-config")["data"]
    settings = Settings.from_env(
        {**config, "APP_ENV": "test", "CURSOR_SECRET": "c" * 32}
    )
    roles = set()
    for obj, container, port_name in _metrics_targets(rendered, k8s):
        where = f"{mode}: {obj['metadata']['name']}"
        annotations = k8s.pod_metadata(obj)["annotations"]
        port = _named_ports(container)[port_name]
        assert annotations["prometheus.io/scrape"] == "true", where
        assert annotations["prometheus.io/port"] == str(port), where
        assert annotations["prometheus.io/path"] == METRICS_PATH, where
        # The port the process really binds.
        api = obj["metadata"]["name"] == "twitter-api"
        bound = settings.metrics_port if api else settings.worker_metrics_port
        assert port == bound, where
        assert port != settings.port, where
        roles.add("api" if api else "worker")
    assert roles == {"api", "worker"}


def test_scrape_annotations_can_be_switched_off(helm, k8s):
    rendered = helm.render(sets=("metrics.podAnnotations=false",))
    for obj, _container, _port in _metrics_targets(rendered, k8s):
        annotations = k8s.pod_metadata(obj)["annotations"]
        assert not [a for a in annotations if a.startswith("prometheus.io/")]
        assert "checksum/config" in annotations


def test_prometheus_operator_objects_only_when_enabled(helm, k8s):
    for mode in k8s.modes:
        if mode == "all-features":
            continue
        rendered = helm.render_mode(mode)
        assert not rendered.of_kind("ServiceMonitor") and not rendered.of_kind(
            "PodMonitor"
        ), mode


def _selects(selector: dict, labels: dict) -> bool:
    return selector["matchLabels"].items() <= labels.items()


def test_service_monitor_scrapes_the_api_and_pod_monitors_each_worker(helm, k8s):
    import yaml

    values = yaml.safe_load((k8s.modes["all-features"][0]).read_text())
    wanted = values["metrics"]["serviceMonitor"]
    rendered = helm.render_mode("all-features")
    pods = {
        obj["metadata"]["name"]: (obj, container, port)
        for obj, container, port in _metrics_targets(rendered, k8s)
    }

    def check_common(monitor, endpoints):
        assert len(endpoints) == 1
        endpoint = endpoints[0]
        assert endpoint["path"] == METRICS_PATH
        assert endpoint["interval"] == wanted["interval"]
        assert endpoint["scrapeTimeout"] == wanted["scrapeTimeout"]
        assert monitor["metadata"]["labels"].items() >= wanted["labels"].items()
        return endpoint

    # API: the ServiceMonitor selects exactly the API Service, by its port name.
    (monitor,) = rendered.of_kind("ServiceMonitor")
    endpoint = check_common(monitor, monitor["spec"]["endpoints"])
    services = [
        s
        for s in rendered.of_kind("Service")
        if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert [s["metadata"]["name"] for s in services] == ["twitter-api"]
    port = next(
        p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"]
    )
    api, container, port_name = pods["twitter-api"]
    assert port["targetPort"] == port_name
    assert port_name in _named_ports(container)

    # Workers: one PodMonitor per worker Deployment, selecting only its pods.
    worker_pods = {n: p for n, p in pods.items() if n != "twitter-api"}
    monitors = rendered.of_kind("PodMonitor")
    assert len(monitors) == len(worker_pods) == len(values["workers"])
    for monitor in monitors:
        endpoint = check_common(monitor, monitor["spec"]["podMetricsEndpoints"])
        selected = [
            name
            for name, (obj, _c, _p) in pods.items()
            if _selects(monitor["spec"]["selector"], k8s.pod_metadata(obj)["labels"])
        ]
        assert selected == [monitor["metadata"]["name"]]
        _obj, container, port_name = worker_pods[selected[0]]
        assert endpoint["port"] == port_name
        assert port_name in _named_ports(container)


def test_network_policies_let_the_scrapers_reach_every_metrics_port(helm, k8s):
    import yaml

    values = yaml.safe_load((k8s.modes["all-features"][0]).read_text())
    scrapers = values["networkPolicy"]["metricsFrom"]
    rendered = helm.render_mode("all-features")
    for obj, _container, port_name in _metrics_targets(rendered, k8s):
        labels = k8s.pod_metadata(obj)["labels"]
        policies = [
            p
            for p in rendered.of_kind("NetworkPolicy")
            if _selects(p["spec"]["podSelector"], labels)
        ]
        assert policies, obj["metadata"]["name"]
        allowed = [
            rule
            for p in policies
            for rule in p["spec"]["ingress"]
            if any(port["port"] == port_name for port in rule["ports"])
            and rule.get("from", scrapers) == scrapers
        ]
        assert allowed, f"{obj['metadata']['name']}: scrapers cannot reach {port_name}"
