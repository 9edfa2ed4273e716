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
