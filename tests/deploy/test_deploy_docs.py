"""The chart's README, CHANGELOG and values table say what the chart does."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path


def _table_module(k8s):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "values_table", k8s.root / "scripts" / "chart-values-table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_table_equals_values_yaml(k8s):
    proc = subprocess.run(
        [
            sys.executable,
            str(k8s.root / "scripts" / "chart-values-table.py"),
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # And the table covers every value: each leaf is documented itself or by a
    # documented parent block, and every documented key exists.
    module = _table_module(k8s)
    text = (k8s.chart / "values.yaml").read_text()
    documented = {key for key, _ in module.documented(text)}
    values = yaml.safe_load(text)
    for key in documented:
        module.dig(values, key)
    for leaf in _leaves(values):
        parts = leaf.split(".")
        parents = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        assert parents & documented, f"{leaf} has no `# <key> -- ...` comment"
    readme = (k8s.chart / "README.md").read_text()
    rows = re.findall(r"^\| `([A-Za-z0-9_.]+)` \| `(.*?)` \|", readme, re.M)
    assert [key for key, _ in rows] == [key for key, _ in module.documented(text)]


def test_value_table_check_notices_a_stale_default(k8s, tmp_path):
    module = _table_module(k8s)
    readme = (k8s.chart / "README.md").read_text()
    text = (k8s.chart / "values.yaml").read_text()
    changed = text.replace("  replicas: 1\n", "  replicas: 7\n", 1)
    assert module.render(readme, text) == readme
    assert module.render(readme, changed) != readme


def test_kubernetes_docs_live_in_the_chart_readme(k8s):
    top = (k8s.root / "README.md").read_text()
    assert "charts/twitter/README.md" in top
    assert "### Quick start on kind" not in top, "moved to the chart's README"
    chart = (k8s.chart / "README.md").read_text()
    for heading in (
        "## Install",
        "## Upgrade",
        "## Three nodes and external data services",
        "### Argo CD and Flux",
        "### A private CA bundle",
        "### PgBouncer as a sidecar",
        "## Redis Cluster",
        "## Values",
    ):
        assert heading in chart, heading
    changelog = (k8s.chart / "CHANGELOG.md").read_text()
    version = yaml.safe_load((k8s.chart / "Chart.yaml").read_text())["version"]
    assert f"## {version} " in changelog, "CHANGELOG entry for the chart version"


def _yaml_block_after(text: str, heading: str) -> str:
    section = text[text.index(heading) :]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_three_node_example_renders_for_a_cluster(helm, k8s, tmp_path):
    """The README's production values render: external Postgres, a Redis
    Cluster, a three-node RabbitMQ with quorum queues, spread and KEDA."""
    readme = (k8s.chart / "README.md").read_text()
    values = tmp_path / "values-production.yaml"
    values.write_text(_yaml_block_after(readme, "## Three nodes and external"))
    rendered = helm.render(values)
    assert not rendered.of_kind("StatefulSet"), "no bundled data service"
    api = rendered.get("Deployment", "twitter-api")
    assert api["spec"]["replicas"] == 3
    assert rendered.get("PodDisruptionBudget", "twitter-api")
    assert {o["metadata"]["name"] for o in rendered.of_kind("ScaledObject")} == {
        "twitter-worker-fanout",
        "twitter-worker-bulk",
    }
    config = rendered.get("ConfigMap", "twitter-config")["data"]
    assert config["BROKER_QUEUE_TYPE"] == "quorum"
    env = {
        e["name"]: e.get("value")
        for e in k8s.containers(api, init=False)[0]["env"]
        if "value" in e
    }
    assert env["REDIS_MODE"] == "cluster"
    assert env["REDIS_URL"].startswith("rediss://redis-cluster-0.")
    assert "sslmode=verify-full" in env["DATABASE_URL"]
    # Valid Kubernetes (and valid KEDA objects) like every CI mode.
    from tests.deploy.test_deploy_charts import _crd_problems, _kubernetes_validate

    utils = _kubernetes_validate()
    if utils is None:
        k8s.missing_tool("kubernetes-validate is not installed (pip: test extra)")
    for version in ("1.30.0", utils.latest_version()):
        for obj in rendered:
            problems = _crd_problems(obj)
            if problems is None:
                utils.validate(obj, version, strict=True)
            else:
                assert problems == [], problems


def test_ca_bundle_and_pgbouncer_examples_render(helm, k8s, tmp_path):
    readme = (k8s.chart / "README.md").read_text()
    for heading in ("### A private CA bundle", "### PgBouncer as a sidecar"):
        values = tmp_path / "example.yaml"
        block = _yaml_block_after(readme, heading)
        values.write_text(block)
        extra = ()
        if "postgres:" in block and "existingSecret" not in block:
            extra = ("postgres.existingSecret=pg-app",)
        if "rabbitmq: {tls: true" in block:
            extra += (
                "rabbitmq.enabled=false",
                "rabbitmq.host=mq",
                "rabbitmq.existingSecret=mq",
                "redis.enabled=false",
                "redis.host=r",
                "postgres.enabled=false",
                "postgres.host=pg",
                "postgres.existingSecret=pg",
            )
        rendered = helm.render(values, sets=extra)
        assert rendered.get("Deployment", "twitter-api"), heading
