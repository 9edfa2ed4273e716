"""values.schema.json turns bad values into clear errors before anything renders."""

from __future__ import annotations

import json

import pytest


def rejected(helm, k8s, *sets: str, values=()) -> str:
    args = ["template", k8s.release, str(k8s.chart)]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    proc = helm.run(*args, check=False)
    assert proc.returncode != 0, f"accepted: {sets}"
    return proc.stderr


def test_defaults_and_ci_values_satisfy_the_schemas(k8s):
    import jsonschema
    import yaml

    schema = json.loads((k8s.chart / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((k8s.chart / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
    for name, chart in k8s.subcharts.items():
        sub = json.loads((chart / "values.schema.json").read_text())
        jsonschema.Draft7Validator.check_schema(sub)
        jsonschema.Draft7Validator(sub).validate(
            yaml.safe_load((chart / "values.yaml").read_text())
        )
        # The parent's block for this service is valid for the subchart too.
        jsonschema.Draft7Validator(sub).validate(defaults[name])


def test_wrong_type_is_rejected(helm, k8s):
    assert "/api/replicas" in rejected(helm, k8s, "api.replicas=two")
    assert "/workers/0/threads" in rejected(helm, k8s, "workers[0].threads=many")
    assert "/postgres/image/tag" in rejected(helm, k8s, "postgres.image.tag=17")


def test_unknown_key_is_rejected(helm, k8s):
    assert "replicaz" in rejected(helm, k8s, "api.replicaz=2")
    assert "bogus" in rejected(helm, k8s, "bogus=1")
    assert "persistance" in rejected(helm, k8s, "postgres.persistance.size=1Gi")


@pytest.mark.parametrize("service", ["postgres", "redis", "rabbitmq"])
def test_external_service_without_host_is_rejected(helm, k8s, service):
    sets = [f"{s}.enabled=false" for s in ("postgres", "redis", "rabbitmq")]
    sets += [
        f"{s}.host=h-{s}" for s in ("postgres", "redis", "rabbitmq") if s != service
    ]
    sets += ["postgres.existingSecret=pg", "rabbitmq.existingSecret=mq"]
    assert f"/{service}/host" in rejected(helm, k8s, *sets)


def test_external_service_without_credentials_is_rejected(helm, k8s):
    error = rejected(helm, k8s, "postgres.enabled=false", "postgres.host=pg-rw")
    assert "/postgres/existingSecret" in error


def test_unknown_queue_is_rejected(helm, k8s):
    assert "/workers/0/queues/0" in rejected(helm, k8s, "workers[0].queues[0]=emails")


def test_migration_hook_with_bundled_postgres_is_rejected(helm, k8s):
    assert "/postgres/enabled" in rejected(helm, k8s, "migrations.asHook=true")


def test_jwt_secret_needs_its_public_half(helm, k8s):
    assert "existingPublicSecret" in rejected(helm, k8s, "jwt.existingSecret=mine")


def test_grace_period_must_cover_the_longest_job(helm, k8s):
    error = rejected(helm, k8s, "workerDefaults.terminationGracePeriodSeconds=60")
    assert "longestJobSeconds" in error


def test_duplicate_worker_names_are_rejected(helm, k8s):
    error = rejected(
        helm,
        k8s,
        "workers[0].name=a",
        "workers[0].queues={fanout}",
        "workers[1].name=a",
        "workers[1].queues={timeline}",
    )
    assert "duplicate" in error


def test_rate_limit_strategies_are_exactly_the_limits_librarys(k8s):
    from limits.strategies import STRATEGIES

    schema = json.loads((k8s.chart / "values.schema.json").read_text())
    rate_limits = schema["properties"]["config"]["properties"]["rateLimits"]
    assert set(rate_limits["properties"]["strategy"]["enum"]) == set(STRATEGIES)


RATE_LIMIT_SAMPLES = [
    "25 per 5 minutes",
    "5 per minute;10 per 15 minutes;20 per 4 hours",
    "60/minute",
    "1 per second, 10 per 2 days",
    "10 per hour|1000 per year",
    "60 per fortnight",
    "sixty per minute",
    "60 per minute;",
    "per minute",
    "",
]


def test_rate_limit_pattern_accepts_only_what_the_limits_library_parses(k8s):
    """The schema's pattern may be stricter than `limits` (lower case only), never
    looser: a value it lets through must not stop the API at start-up."""
    import jsonschema
    from limits import parse_many

    schema = json.loads((k8s.chart / "values.schema.json").read_text())
    pattern = jsonschema.Draft7Validator(
        {"$defs": schema["$defs"], "$ref": "#/$defs/rateLimit"}
    )
    accepted = 0
    for sample in RATE_LIMIT_SAMPLES:
        if pattern.is_valid(sample):
            accepted += 1
            assert parse_many(sample), sample
        else:
            with pytest.raises(ValueError):
                parse_many(sample)
    assert accepted >= 5


def test_bad_rate_limits_and_metrics_values_are_rejected(helm, k8s):
    error = rejected(helm, k8s, "config.rateLimits.strategy=leaky-bucket")
    assert "/config/rateLimits/strategy" in error
    error = rejected(helm, k8s, "config.rateLimits.writes=lots")
    assert "/config/rateLimits/writes" in error
    assert "/config/trustedProxies/0" in rejected(
        helm, k8s, "config.trustedProxies={ingress}"
    )
    error = rejected(helm, k8s, "metrics.serviceMonitor.interval=30 seconds")
    assert "/metrics/serviceMonitor/interval" in error
    assert "serviceMonitr" in rejected(helm, k8s, "metrics.serviceMonitr.enabled=true")
