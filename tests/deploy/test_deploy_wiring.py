"""The chart wires the processes the way the code expects them.

Sources of truth are the code itself: the variables ``Settings.from_env`` reads,
the route table in api/app.py, the actors' queues and time limits, the Dockerfile,
and the CLIs' own argument parsers.
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
from pathlib import Path

import pytest

from tests.deploy import dockerfile
from tests.support import settings_read

# Variables that only some processes get, or only in some configurations.
API_ONLY = {"JWT_PRIVATE_KEY_PATH"}
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # an emptyDir in API and worker pods
WHEN_REDIS_AUTH = "REDIS_PASSWORD"
# Read by code paths the chart never runs: `python -m cli standalone` (one process,
# Redis as broker, local files) is the laptop-without-services mode.
NOT_IN_CLUSTER = {"STANDALONE_DATA_DIR", "HOST"}  # HOST: `python -m cli run`'s bind
# What every process needs to run in production, whatever else the code reads.
REQUIRED = {
    "APP_ENV",
    "DATABASE_URL",
    "DATABASE_PASSWORD",
    "REDIS_URL",
    "BROKER_URL",
    "BROKER_PASSWORD",
    "JWT_PUBLIC_KEYS_PATH",
    "CURSOR_SECRET",
}
ALL_MODES = ["default", "all-features", "external", "external-hook"]


@pytest.fixture(scope="module")
def settings_vars() -> set[str]:
    read = settings_read()
    assert REQUIRED - read == set(), "Settings no longer reads a required var"
    return read


# -- reading rendered pods ----------------------------------------------------


def app_containers(rendered, k8s):
    """(role, workload, container) for every container running the app image."""
    found = []
    for obj in rendered.workloads():
        component = obj["metadata"]["labels"].get("app.kubernetes.io/component", "")
        spec = k8s.pod_spec(obj)
        for c in spec.get("initContainers") or []:
            if c["name"] == "wait-for-schema":
                found.append(("wait", obj, c))
        for c in spec["containers"]:  # sidecars (other names) are the user's
            if component == "api" and c["name"] == "api":
                found.append(("api", obj, c))
            elif component.startswith("worker-") and c["name"] == "worker":
                found.append(("worker", obj, c))
            elif component == "migrate" and c["name"] == "migrate":
                found.append(("migrate", obj, c))
    return found


def env_of(rendered, container) -> dict[str, tuple]:
    """Every variable a container gets, as ('value', v) / ('secret', name, key)."""
    env: dict[str, tuple] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" not in source:
            continue  # a user's extraEnvFrom Secret
        ref = source["configMapRef"]["name"]
        cm = rendered.find("ConfigMap", ref)
        if cm is None:  # a user's own ConfigMap (extraEnvFrom)
            assert ref != "twitter-config", "the chart's ConfigMap is missing"
            continue
        for key, value in cm["data"].items():
            env[key] = ("value", value)
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = ("value", item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = ("secret", ref["name"], ref["key"])
        else:
            env[item["name"]] = ("other", item["valueFrom"])
    return env


def resolve(env: dict[str, tuple], secrets: dict | None = None) -> dict[str, str]:
    """String values as the kubelet would pass them ($(VAR) expanded)."""
    secrets = secrets or {}
    out: dict[str, str] = {}
    for name, source in env.items():
        if source[0] == "value":
            value = source[1]
            value = re.sub(
                r"\$\((\w+)\)", lambda m: out.get(m.group(1), m.group(0)), value
            )
            out[name] = value
        elif source[0] == "secret":
            out[name] = secrets.get((source[1], source[2]), f"{source[2]}-{'x' * 40}")
    return out


def mounts_of(obj, container, k8s) -> dict[str, dict]:
    """mountPath -> volume for a container."""
    volumes = {v["name"]: v for v in k8s.pod_spec(obj).get("volumes") or []}
    return {
        m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts") or []
    }


# -- env vars -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_every_setting_the_code_reads_is_set(helm, k8s, settings_vars, mode):
    rendered = helm.render_mode(mode)
    roles = app_containers(rendered, k8s)
    assert {r for r, _, _ in roles} >= {"api", "worker", "migrate", "wait"}
    redis_auth = mode != "external-hook"  # that mode's external Redis has no Secret
    for role, obj, container in roles:
        names = set(env_of(rendered, container))
        expected = set(settings_vars) - API_ONLY - NOT_IN_CLUSTER
        expected -= {METRICS_DIR, WHEN_REDIS_AUTH}
        if role == "api":
            expected |= API_ONLY
        if role in ("api", "worker"):
            expected.add(METRICS_DIR)
        if redis_auth:
            expected.add(WHEN_REDIS_AUTH)
        where = f"{mode}: {obj['metadata']['name']}/{container['name']}"
        missing = expected - names
        assert not missing, (
            f"{where} lacks {sorted(missing)}: add them to charts/twitter "
            "(values `config`, twitter.configData in _helpers.tpl, or config.extraEnv)"
        )
        if role != "api":
            assert not names & API_ONLY, f"{where}: the private key is API-only"
        if not redis_auth:
            assert WHEN_REDIS_AUTH not in names, where
        resolved = resolve(env_of(rendered, container))
        assert resolved["APP_ENV"] == "production", where


@pytest.mark.parametrize("mode", ALL_MODES)
def test_rendered_env_builds_valid_production_settings(helm, k8s, mode, tmp_path):
    from core.settings import Settings

    rendered = helm.render_mode(mode)
    keys_dir = tmp_path / "public"
    keys_dir.mkdir()
    for _role, _obj, container in app_containers(rendered, k8s):
        env = resolve(env_of(rendered, container))
        env["JWT_PUBLIC_KEYS_PATH"] = str(keys_dir)  # the mount, checked elsewhere
        settings = Settings.from_env(env)  # raises ConfigError on a bad value
        assert settings.is_production
        assert settings.broker_kind == "rabbitmq"
        assert len(settings.cursor_secret) >= 32
        assert settings.database_dsn.startswith("postgresql://")
        assert "x" * 40 in settings.database_dsn, "password not merged into the URL"
        assert settings.broker_dsn.endswith("/%2F"), "vhost / must be explicit"


def test_bundled_mode_points_at_the_bundled_services(helm, k8s):
    rendered = helm.render_mode("default")
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    _, _, api = next(r for r in app_containers(rendered, k8s) if r[0] == "api")
    env = resolve(env_of(rendered, api))
    for var, service, port in (
        ("DATABASE_URL", "twitter-postgres", 5432),
        ("REDIS_URL", "twitter-redis", 6379),
        ("BROKER_URL", "twitter-rabbitmq", 5672),
    ):
        assert re.search(rf"[/@]{service}:{port}/", env[var]), env[var]
        ports = [p["port"] for p in services[service]["spec"]["ports"]]
        assert port in ports
    # The app and each bundled server read the same generated password.
    for statefulset, var, app_var in (
        ("twitter-postgres", "POSTGRES_PASSWORD", "DATABASE_PASSWORD"),
        ("twitter-redis", "REDIS_PASSWORD", "REDIS_PASSWORD"),
        ("twitter-rabbitmq", "RABBITMQ_DEFAULT_PASS", "BROKER_PASSWORD"),
    ):
        server = rendered.get("StatefulSet", statefulset)
        server_env = env_of(rendered, k8s.containers(server, init=False)[0])
        assert server_env[var] == env_of(rendered, api)[app_var], statefulset
        assert server_env[var][1] == "twitter-generated"


def test_external_mode_uses_operator_secrets_and_hosts(helm, k8s):
    rendered = helm.render_mode("external")
    assert not rendered.of_kind("StatefulSet")
    assert not rendered.of_kind("PersistentVolumeClaim")
    # jwt and cursor Secrets are given and no data service is bundled: no key Job.
    for kind in ("Job", "Role", "RoleBinding"):
        assert all("keys" not in o["metadata"]["name"] for o in rendered.of_kind(kind))
    _, _, api = next(r for r in app_containers(rendered, k8s) if r[0] == "api")
    env = env_of(rendered, api)
    assert env["DATABASE_USERNAME"] == ("secret", "pg-app", "username")
    assert env["DATABASE_PASSWORD"] == ("secret", "pg-app", "password")
    assert env["BROKER_USERNAME"] == ("secret", "mq-default-user", "username")
    assert env["BROKER_PASSWORD"] == ("secret", "mq-default-user", "password")
    assert env["REDIS_PASSWORD"] == ("secret", "redis-auth", "password")
    assert env["CURSOR_SECRET"] == ("secret", "app-secrets", "CURSOR_SECRET")
    values = resolve(env, {("pg-app", "username"): "app"})
    assert (
        values["DATABASE_URL"] == "postgresql://app@pg-rw:5432/twitter?sslmode=require"
    )
    assert values["BROKER_URL"].startswith("amqp://")
    assert "@mq:5672/%2F" in values["BROKER_URL"]


# -- routes, commands and the image ---------------------------------------------


def route_table(k8s) -> set[str]:
    app = k8s.root / "api" / "app.py"
    if not app.exists():
        pytest.fail(
            "api/app.py does not exist yet: the chart's probes cannot be checked"
        )
    routes = set()
    for node in ast.walk(ast.parse(app.read_text())):
        is_add_route = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_route"
            and node.args
        )
        if not is_add_route:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant):
            routes.add(first.value)
        elif isinstance(first, ast.JoinedStr):
            routes.add(
                "".join(
                    p.value if isinstance(p, ast.Constant) else "*"
                    for p in first.values
                )
            )
    if not routes:
        pytest.fail("no app.add_route(...) calls found in api/app.py")
    return routes


def test_probes_and_helm_tests_hit_routes_that_exist(helm, k8s):
    routes = route_table(k8s)
    rendered = helm.render_mode("default")
    api = rendered.get("Deployment", "twitter-api")
    container = k8s.containers(api, init=False)[0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
        assert container[probe]["httpGet"]["port"] == "http"
    scripts = k8s.chart / "files" / "tests"
    called = set()
    for script in scripts.glob("*.py"):
        called |= set(re.findall(r'"(/[a-z._/-]+)"', script.read_text()))
    assert called >= {"/healthz", "/readyz", "/auth/signup", "/auth/login"}
    assert called - routes == set(), (
        f"helm tests call missing routes: {called - routes}"
    )
    assert "/openapi.json" in routes
    assert "/metrics" not in routes, "metrics belong on METRICS_PORT, not the API port"


def test_liveness_probes_never_touch_dependencies(helm, k8s):
    for mode in ALL_MODES:
        for obj in helm.render_mode(mode).workloads():
            for container in k8s.containers(obj, init=False):
                probe = container.get("livenessProbe")
                if (
                    not probe
                    or obj["metadata"]["labels"].get("app.kubernetes.io/name")
                    != "twitter"
                ):
                    continue
                if "httpGet" in probe:
                    assert probe["httpGet"]["path"] == "/healthz"
                else:
                    assert "tcpSocket" in probe


def actor_queues_and_limits(k8s) -> tuple[set[str], list[int]]:
    actors_dir = k8s.root / "workers" / "actors"
    files = sorted(actors_dir.glob("*.py")) if actors_dir.exists() else []
    if not files:
        pytest.fail(
            "workers/actors/*.py not found: the worker queues cannot be checked"
        )
    from core import outbox

    queues, limits = set(), []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "actor"
            ):
                continue
            for kw in node.keywords:
                if kw.arg == "queue_name":
                    if isinstance(kw.value, ast.Constant):
                        queues.add(kw.value.value)
                    else:  # outbox.JOB.queue_name
                        job = getattr(outbox, kw.value.value.attr)
                        queues.add(job.queue_name)
                if kw.arg == "time_limit":
                    limits.append(ast.literal_eval(kw.value))
    assert queues, "no @dramatiq.actor(queue_name=...) found"
    return queues, limits


# The worker container's entrypoint: `sh -c SCRIPT $0 dramatiq ...`, where SCRIPT
# empties the metrics directory and then `exec "$@"`s the dramatiq command.
WRAPPER_EXEC = 'exec "$@"'


def dramatiq_argv(command: list[str]) -> list[str]:
    """The dramatiq command behind the worker's metrics-reset wrapper."""
    assert command[:2] == ["sh", "-c"], command
    script = command[2]
    # exec, as the last step: dramatiq's main process replaces the shell as PID 1
    # and receives the kubelet's SIGTERM itself.
    assert script.rstrip().endswith(WRAPPER_EXEC), script
    assert script.count(WRAPPER_EXEC) == 1, script
    return command[4:]


@pytest.mark.parametrize("mode", ["default", "all-features"])
def test_worker_commands_name_the_real_module_and_queues(helm, k8s, mode):
    import dramatiq.cli

    assert (k8s.root / "workers" / "main.py").exists(), "workers/main.py is missing"
    actor_queues, limits = actor_queues_and_limits(k8s)
    rendered = helm.render_mode(mode)
    consumed = set()
    parser = dramatiq.cli.make_argument_parser()
    for obj in rendered.of_kind("Deployment"):
        if not obj["metadata"]["name"].startswith("twitter-worker-"):
            continue
        spec = k8s.pod_spec(obj)
        command = dramatiq_argv(spec["containers"][0]["command"])
        assert command[0] == "dramatiq"
        if "--watch" in command:  # dev mode; the directory exists only in the pod
            at = command.index("--watch")
            assert command[at + 1] == "/app"
            command = command[:at] + command[at + 2 :]
        args = parser.parse_args(command[1:])
        assert args.broker == "workers.main"
        # JSON job lines on stdout (docs/observability.md), not dramatiq's stderr.
        assert args.log_file == "/dev/stdout"
        assert args.queues, "a worker must name its queues"
        assert set(args.queues) <= actor_queues, f"unknown queues {args.queues}"
        consumed |= set(args.queues)
        # Shutdown: jobs finish within --worker-shutdown-timeout, which ends
        # before the kubelet's SIGKILL.
        grace = spec["terminationGracePeriodSeconds"]
        shutdown_s = args.worker_shutdown_timeout / 1000
        assert shutdown_s < grace - 5
        assert shutdown_s > max(limits) / 1000
        assert grace > max(limits) / 1000
    assert consumed == actor_queues, (
        f"queues nobody consumes: {actor_queues - consumed}"
    )
    values_longest = helm_values(k8s)["workerDefaults"]["longestJobSeconds"]
    assert max(limits) / 1000 <= values_longest


def _worker_command(helm, k8s) -> list[str]:
    worker = helm.render_mode("default").get("Deployment", "twitter-worker-default")
    return k8s.containers(worker, init=False)[0]["command"]


def test_worker_wrapper_empties_the_metrics_dir_and_execs(helm, k8s, tmp_path):
    """Run the rendered wrapper with /bin/sh: stale multiprocess files go, and the
    command it starts keeps the shell's pid (exec), so it is PID 1 in the pod."""
    import subprocess
    import sys

    wrapper = _worker_command(helm, k8s)[:4]
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    for stale in ("counter_7.db", "gauge_livesum_7.db", "histogram_8.db"):
        (metrics_dir / stale).write_bytes(b"stale")
    keep = tmp_path / "outside.db"
    keep.write_bytes(b"not ours")
    probe = "import os; print(os.getpid(), os.listdir(os.environ['DIR_UNDER_TEST']))"
    env = {
        "PATH": "/usr/bin:/bin",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "DIR_UNDER_TEST": str(metrics_dir),
    }
    proc = subprocess.Popen(
        [*wrapper, sys.executable, "-c", probe],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    pid, listing = out.split(" ", 1)
    assert int(pid) == proc.pid, "the wrapper must exec, not fork, the worker"
    assert listing.strip() == "[]"
    assert metrics_dir.is_dir() and keep.exists()


def test_worker_wrapper_refuses_to_run_without_the_metrics_dir(helm, k8s, tmp_path):
    """With the variable unset the guard stops the shell before `rm` runs (a
    recording fake `rm` stands in for the real one, whatever happens)."""
    import subprocess
    import sys

    wrapper = _worker_command(helm, k8s)[:4]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "rm-calls"
    fake_rm = fake_bin / "rm"
    fake_rm.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake_rm.chmod(0o755)
    proc = subprocess.run(
        [*wrapper, sys.executable, "-c", "print('started')"],
        env={"PATH": f"{fake_bin}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "started" not in proc.stdout
    assert not calls.exists(), "rm ran without PROMETHEUS_MULTIPROC_DIR"
    assert "PROMETHEUS_MULTIPROC_DIR" in proc.stderr


@pytest.mark.parametrize("mode", ALL_MODES)
def test_metrics_dir_is_a_writable_emptydir_in_api_and_worker_pods(helm, k8s, mode):
    rendered = helm.render_mode(mode)
    seen = set()
    for role, obj, container in app_containers(rendered, k8s):
        if role not in ("api", "worker"):
            continue
        seen.add(role)
        where = f"{mode}: {obj['metadata']['name']}"
        path = resolve(env_of(rendered, container))[METRICS_DIR]
        volume = mounts_of(obj, container, k8s)[path]
        assert "emptyDir" in volume, f"{where}: {path} must be an emptyDir"
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == path)
        assert not mount.get("readOnly"), where
        if role == "worker":
            assert "PROMETHEUS_MULTIPROC_DIR" in container["command"][2], where
    assert seen == {"api", "worker"}


def helm_values(k8s) -> dict:
    import yaml

    return yaml.safe_load((k8s.chart / "values.yaml").read_text())


def test_schema_knows_exactly_the_actor_queues(k8s):
    actor_queues, _ = actor_queues_and_limits(k8s)
    schema = json.loads((k8s.chart / "values.schema.json").read_text())
    enum = schema["properties"]["workers"]["items"]["properties"]["queues"]["items"]
    assert set(enum["enum"]) == actor_queues


def test_api_image_command_port_and_user_match_the_dockerfile(helm, k8s):
    import gunicorn.config

    instructions = dockerfile.instructions(k8s.root / "Dockerfile")
    final_stage = instructions[
        max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :
    ]
    cmd = json.loads(next(rest for word, rest in final_stage if word == "CMD"))
    expose = int(next(rest for word, rest in final_stage if word == "EXPOSE"))
    user = next(rest for word, rest in final_stage if word == "USER")
    rendered = helm.render_mode("default")
    api = rendered.get("Deployment", "twitter-api")
    container = k8s.containers(api, init=False)[0]
    assert container["command"] == cmd
    assert container["ports"][0]["containerPort"] == expose
    config = rendered.get("ConfigMap", "twitter-config")
    assert config["data"]["PORT"] == str(expose)
    uid, gid = (int(x) for x in user.split(":"))
    assert k8s.pod_spec(api)["securityContext"]["runAsUser"] == uid
    assert k8s.pod_spec(api)["securityContext"]["runAsGroup"] == gid
    # gunicorn itself accepts the command line.
    args = gunicorn.config.Config().parser().parse_args(cmd[1:])
    assert args.config == "python:api.gunicorn_conf"
    assert args.args == ["api.wsgi:app"]
    assert (k8s.root / "api" / "wsgi.py").exists()
    assert (k8s.root / "api" / "gunicorn_conf.py").exists()


def test_gunicorn_stops_within_the_grace_period(helm, k8s):
    conf = ast.parse((k8s.root / "api" / "gunicorn_conf.py").read_text())
    graceful = next(
        ast.literal_eval(node.value)
        for node in conf.body
        if isinstance(node, ast.Assign)
        and getattr(node.targets[0], "id", "") == "graceful_timeout"
    )
    api = helm.render_mode("default").get("Deployment", "twitter-api")
    spec = k8s.pod_spec(api)
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert int(pre_stop[1]) + graceful < spec["terminationGracePeriodSeconds"]


def test_migration_and_wait_commands(helm, k8s):
    main = (k8s.root / "migrations" / "__main__.py").read_text()
    assert '"wait"' in main and "--timeout" in main
    for mode in ALL_MODES:
        rendered = helm.render_mode(mode)
        for role, _obj, container in app_containers(rendered, k8s):
            if role == "migrate":
                assert container["command"] == ["python", "-m", "migrations"]
            if role == "wait":
                assert container["command"][:4] == [
                    "python",
                    "-m",
                    "migrations",
                    "wait",
                ]
                assert container["command"][4] == "--timeout"
                assert int(container["command"][5]) > 0


def test_key_job_arguments_parse_and_name_the_mounted_secrets(helm, k8s):
    from keys.__main__ import build_parser

    rendered = helm.render_mode("all-features")
    job = rendered.get("Job", "twitter-keys")
    command = k8s.containers(job)[0]["command"]
    assert command[:3] == ["python", "-m", "keys"]
    args = build_parser().parse_args(command[3:])
    assert args.command == "ensure-secret"
    assert args.rotation == 2
    assert args.generated_secret == "twitter-generated"
    assert set(args.generated_key) == {
        "cursor-secret",
        "postgres-password",
        "redis-password",
        "rabbitmq-password",
    }
    api = rendered.get("Deployment", "twitter-api")
    volumes = {v["name"]: v for v in k8s.pod_spec(api)["volumes"]}
    assert volumes["jwt-private"]["secret"]["secretName"] == args.jwt_private_secret
    assert volumes["jwt-public"]["secret"]["secretName"] == args.jwt_public_secret


# -- selectors, mounts, security --------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_service_selectors_match_pod_labels(helm, k8s, mode):
    rendered = helm.render_mode(mode)
    pods = [k8s.pod_metadata(o)["labels"] for o in rendered.workloads()]
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        matching = [labels for labels in pods if selector.items() <= labels.items()]
        assert len(matching) == 1, (
            f"{service['metadata']['name']} selects {len(matching)}"
        )
    for workload in rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet"):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= k8s.pod_metadata(workload)["labels"].items()
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }
    for sts in rendered.of_kind("StatefulSet"):
        headless = rendered.get("Service", sts["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None"
    for ingress in rendered.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = rendered.get("Service", backend["name"])
                names = [p["name"] for p in service["spec"]["ports"]]
                assert backend["port"]["name"] in names
    for policy in rendered.of_kind("NetworkPolicy"):
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pods)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_key_secrets_are_mounted_where_settings_expect_them(helm, k8s, mode):
    rendered = helm.render_mode(mode)
    private_secrets = set()
    for role, obj, container in app_containers(rendered, k8s):
        env = resolve(env_of(rendered, container))
        mounts = mounts_of(obj, container, k8s)
        public = mounts[env["JWT_PUBLIC_KEYS_PATH"]]
        assert "secret" in public and "items" not in public["secret"], "a directory"
        # Rotations reach running pods only through mounts the kubelet updates.
        assert not [m for m in container["volumeMounts"] if "subPath" in m]
        if role == "api":
            # The whole Secret as a directory: rotations add previous.pem and
            # active-after next to private.pem, and the files update in place.
            path = env["JWT_PRIVATE_KEY_PATH"]
            assert posixpath.basename(path) == "private.pem"
            volume = mounts[posixpath.dirname(path)]["secret"]
            assert "items" not in volume
            mount = next(
                m
                for m in container["volumeMounts"]
                if m["mountPath"] == posixpath.dirname(path)
            )
            assert "subPath" not in mount, "a subPath mount never updates"
            private_secrets.add(volume["secretName"])
    assert len(private_secrets) == 1
    for obj in rendered.workloads():
        for volume in k8s.pod_spec(obj).get("volumes") or []:
            name = (volume.get("secret") or {}).get("secretName")
            if name in private_secrets:
                component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
                assert component == "api", f"private key mounted into {component}"
    if mode == "external":
        assert private_secrets == {"my-jwt"}


@pytest.mark.parametrize("mode", ALL_MODES)
def test_every_container_is_locked_down(helm, k8s, mode):
    for obj in helm.render_mode(mode).workloads():
        pod = k8s.pod_spec(obj)
        name = obj["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        keys_job = name.endswith("-keys")
        assert pod.get("automountServiceAccountToken") is keys_job, name
        for container in k8s.containers(obj):
            ctx = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in ctx["capabilities"], where
            assert container["resources"]["requests"], where
            assert container["resources"]["limits"]["memory"], where


# -- hooks, migrations, storage -----------------------------------------------------


def test_key_job_rbac_are_hooks_at_lower_weights(helm, k8s):
    rendered = helm.render_mode("default")
    job = rendered.get("Job", "twitter-keys")
    sa = rendered.get("ServiceAccount", "twitter-keys")
    role = rendered.get("Role", "twitter-keys")
    binding = rendered.get("RoleBinding", "twitter-keys")
    events = k8s.hook_events(job)
    assert events == {"pre-install", "pre-upgrade"}
    for obj in (sa, role, binding):
        assert k8s.hook_events(obj) == events
    assert k8s.hook_weight(sa) < k8s.hook_weight(binding) < k8s.hook_weight(job)
    assert k8s.hook_weight(role) < k8s.hook_weight(binding)
    assert k8s.pod_spec(job)["serviceAccountName"] == sa["metadata"]["name"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == sa["metadata"]["name"]
    # Only Secrets, namespaced, no wildcard.
    for rule in role["spec"]["rules"] if "spec" in role else role["rules"]:
        assert rule["apiGroups"] == [""] and rule["resources"] == ["secrets"]
        assert "*" not in rule["verbs"]


def test_default_migrations_are_a_normal_job_the_pods_wait_for(helm, k8s):
    rendered = helm.render_mode("default")
    jobs = [j for j in rendered.of_kind("Job") if "migrate" in j["metadata"]["name"]]
    assert len(jobs) == 1
    job = jobs[0]
    assert not k8s.hook_events(job), "a pre-install hook would run before Postgres"
    assert job["metadata"]["name"].endswith("-migrate-1"), "name carries the revision"
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0
    inits = k8s.pod_spec(job)["initContainers"]
    assert inits[0]["name"] == "wait-for-postgres"
    assert "pg_isready" in " ".join(inits[0]["command"])
    for name in ("twitter-api", "twitter-worker-default"):
        init_names = [
            c["name"]
            for c in k8s.pod_spec(rendered.get("Deployment", name))["initContainers"]
        ]
        assert "wait-for-schema" in init_names


def test_hook_mode_renders_every_input_as_an_earlier_hook(helm, k8s):
    rendered = helm.render_mode("external-hook")
    job = rendered.get("Job", "twitter-migrate")
    events = k8s.hook_events(job)
    assert events == {"pre-install", "pre-upgrade"}
    weight = k8s.hook_weight(job)
    spec = k8s.pod_spec(job)
    keys_job = rendered.get("Job", "twitter-keys")
    created_by_keys_job = {"twitter-jwt", "twitter-jwt-public", "twitter-generated"}
    assert k8s.hook_weight(keys_job) < weight
    external = {"pg-app", "mq-default-user"}

    def check(kind: str, name: str):
        obj = rendered.find(kind, name)
        if obj is None:
            assert kind == "Secret" and name in created_by_keys_job | external, (
                kind,
                name,
            )
            return
        assert k8s.hook_events(obj) >= events, f"{kind} {name} is not a hook"
        assert k8s.hook_weight(obj) < weight, f"{kind} {name} weight"

    check("ServiceAccount", spec["serviceAccountName"])
    for container in k8s.containers(job):
        for source in container.get("envFrom") or []:
            check("ConfigMap", source["configMapRef"]["name"])
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                check("Secret", ref["name"])
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            check("Secret", volume["secret"]["secretName"])
        if "configMap" in volume:
            check("ConfigMap", volume["configMap"]["name"])


def test_data_pvcs_are_small_kept_and_use_the_default_storage_class(helm, k8s):
    rendered = helm.render_mode("default")
    claims = rendered.of_kind("PersistentVolumeClaim")
    assert len(claims) == 3
    for claim in claims:
        name = claim["metadata"]["name"]
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert "storageClassName" not in claim["spec"], name
        size = claim["spec"]["resources"]["requests"]["storage"]
        assert size in ("1Gi", "2Gi"), (name, size)
        users = [
            s
            for s in rendered.of_kind("StatefulSet")
            if any(
                (v.get("persistentVolumeClaim") or {}).get("claimName") == name
                for v in k8s.pod_spec(s)["volumes"]
            )
        ]
        assert len(users) == 1, name


def test_small_cluster_defaults_and_pinned_official_images(helm, k8s):
    rendered = helm.render_mode("default")
    for obj in rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet"):
        assert obj["spec"]["replicas"] == 1
    assert not rendered.of_kind("PodDisruptionBudget")
    assert not rendered.of_kind("HorizontalPodAutoscaler")
    images = {
        c["image"] for s in rendered.of_kind("StatefulSet") for c in k8s.containers(s)
    }
    assert images == {"postgres:17", "redis:8", "rabbitmq:4"}


def test_optional_features_render(helm, k8s):
    rendered = helm.render_mode("all-features")
    assert rendered.get("PodDisruptionBudget", "twitter-api")
    assert rendered.get("PodDisruptionBudget", "twitter-worker-fanout")
    # One replica, but autoscaled up to three: a PDB keeps evictions one at a time.
    assert rendered.get("PodDisruptionBudget", "twitter-worker-bulk")
    assert rendered.find("PodDisruptionBudget", "twitter-worker-default") is None
    hpa = rendered.get("HorizontalPodAutoscaler", "twitter-api")
    assert hpa["spec"]["minReplicas"] == 2
    assert "replicas" not in rendered.get("Deployment", "twitter-api")["spec"]
    ingress = rendered.get("Ingress", "twitter-api")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["tls"][0]["hosts"] == ["twitter.example.test"]
    config = rendered.get("ConfigMap", "twitter-config")["data"]
    assert config["COOKIE_SECURE"] == "true"
    assert config["FEATURE_FLAG_X"] == "on"
    api = rendered.get("Deployment", "twitter-api")
    assert k8s.containers(api, init=False)[0]["image"].startswith(
        "twitter-backend@sha256:"
    )
    bulk = rendered.get("Deployment", "twitter-worker-bulk")
    assert k8s.pod_spec(bulk)["terminationGracePeriodSeconds"] == 120


def test_default_ingress_host_and_class(helm, k8s):
    ingress = helm.render_mode("default").get("Ingress", "twitter-api")
    assert ingress["spec"]["rules"][0]["host"] == "twitter.local"
    assert "ingressClassName" not in ingress["spec"], "empty: the cluster default"
    assert "tls" not in ingress["spec"]


def test_config_and_secret_changes_roll_the_pods(helm, k8s):
    base = helm.render_mode("default")
    changed = helm.render(sets=("config.timelineCap=900",))
    moved = helm.render(sets=("jwt.existingSecret=a", "jwt.existingPublicSecret=b"))
    rotated = helm.render(sets=("jwt.rotation=1", "jwt.retiredKids={" + "A" * 43 + "}"))
    for name in ("twitter-api", "twitter-worker-default"):
        before = k8s.pod_metadata(base.get("Deployment", name))["annotations"]
        after = k8s.pod_metadata(changed.get("Deployment", name))["annotations"]
        assert before["checksum/config"] != after["checksum/config"]
        after = k8s.pod_metadata(moved.get("Deployment", name))["annotations"]
        assert before["checksum/secrets"] != after["checksum/secrets"]
        # Key rotation reaches the running pods through the mounted files.
        after = k8s.pod_metadata(rotated.get("Deployment", name))["annotations"]
        assert before == after, "a key rotation must not roll the pods"


def test_dev_mode_syncs_sources_and_reloads(helm, k8s):
    rendered = helm.render_mode("all-features")  # dev.enabled
    api = rendered.get("Deployment", "twitter-api")
    spec = k8s.pod_spec(api)
    assert spec["initContainers"][0]["name"] == "dev-sources"
    main = spec["containers"][0]
    assert "--reload" in main["command"]
    assert "/app" in {m["mountPath"] for m in main["volumeMounts"]}
    worker = rendered.get("Deployment", "twitter-worker-fanout")
    assert "--watch" in k8s.pod_spec(worker)["containers"][0]["command"]
    assert "watchdog" in (k8s.root / "Dockerfile").read_text()


def test_kind_and_minikube_values_render(helm, k8s):
    for name in ("values-kind.yaml", "values-minikube.yaml", "values-dev.yaml"):
        path = k8s.root / "k8s" / name
        assert path.exists(), path
        assert helm.render(path), name


def test_subchart_generated_secret_names_match_the_app(helm, k8s):
    """The subcharts' own defaults agree with what the app chart computes."""
    import yaml

    for name, chart in k8s.subcharts.items():
        values = yaml.safe_load((chart / "values.yaml").read_text())
        assert values["generatedSecret"] == "{{ .Release.Name }}-generated"
        assert values["generatedSecretKey"] == f"{name}-password"
    assert Path(k8s.chart / "templates" / "keys-job.yaml").exists()


# Chart defaults that differ from the code's local-development defaults on purpose.
DELIBERATE_DEFAULTS = {
    "APP_ENV",  # production
    "TRUSTED_PROXIES",  # the cluster's pod networks, where the ingress controller runs
    # Replicated queues for a cluster; the code keeps classic so that an existing
    # broker's queues are never redeclared with another type (UPGRADING.md).
    "BROKER_QUEUE_TYPE",
}


def test_chart_defaults_match_the_code_defaults(helm, k8s):
    """A default changed in core/settings.py must not be silently overridden."""
    from core.settings import Settings

    config = helm.render_mode("default").get("ConfigMap", "twitter-config")["data"]
    code = Settings.from_env({})
    for name, value in config.items():
        if name in DELIBERATE_DEFAULTS:
            continue
        charted = Settings.from_env({name: value})
        changed = {
            field: getattr(charted, field)
            for field in code.__dataclass_fields__
            if getattr(charted, field) != getattr(code, field)
        }
        assert not changed, f"{name}={value!r} overrides the code default: {changed}"


# -- rate limits -------------------------------------------------------------------

# What the brief of the rate limiter names; the test checks it against the code.
RATE_LIMIT_VARS = {
    "RATE_LIMITS_ENABLED",
    "RATE_LIMIT_STRATEGY",
    "RATE_LIMIT_AUTH",
    "RATE_LIMIT_LOGIN_FAILURES",
    "RATE_LIMIT_WRITES",
    "RATE_LIMIT_READS",
    "RATE_LIMIT_ANONYMOUS",
    "TRUSTED_PROXIES",
}


def documented_helm_values(k8s) -> dict[str, str]:
    """Env var -> Helm value, from the rate-limit tables of docs/security.md."""
    text = (k8s.root / "docs" / "security.md").read_text()
    found = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        envs = [c for c in cells if re.fullmatch(r"`[A-Z][A-Z0-9_]+`", c)]
        values = [c for c in cells if re.fullmatch(r"`config\.[A-Za-z.]+`", c)]
        if envs and values:
            found[envs[0].strip("`")] = values[0].strip("`")
    return found


def _dig(tree: dict, path: str):
    for part in path.split("."):
        tree = tree[part]
    return tree


def test_rate_limit_settings_are_values_as_documented(
    helm, k8s, settings_vars, tmp_path
):
    """Every rate-limit variable the code reads is the Helm value the docs name:
    set each to something else and it reaches the ConfigMap, and the API's
    limiter accepts the result."""
    import yaml
    from limits.strategies import STRATEGIES

    from api.ratelimit import RateLimits
    from core.settings import Settings

    read = {v for v in settings_vars if v.startswith("RATE_LIMIT")}
    assert read | {"TRUSTED_PROXIES"} == RATE_LIMIT_VARS
    documented = documented_helm_values(k8s)
    assert set(documented) >= RATE_LIMIT_VARS, "docs/security.md rate-limit tables"
    defaults = helm_values(k8s)
    overrides: dict = {}
    expected = {}
    for var in sorted(RATE_LIMIT_VARS):
        path = documented[var]
        try:
            default = _dig(defaults, path)
        except KeyError:
            raise AssertionError(f"docs name {path} for {var}: no such value") from None
        if isinstance(default, bool):
            new, rendered = not default, str(not default).lower()
        elif isinstance(default, list):
            new, rendered = ["10.1.0.0/16", "fd00::/8"], "10.1.0.0/16,fd00::/8"
        elif var == "RATE_LIMIT_STRATEGY":
            new = rendered = next(s for s in STRATEGIES if s != default)
        else:
            new = rendered = "7 per minute;70 per day"
        node = overrides
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = new
        expected[var] = rendered
    values = tmp_path / "rate-limits.yaml"
    values.write_text(yaml.safe_dump(overrides))
    for files in ((), (values,)):
        config = helm.render(*files).get("ConfigMap", "twitter-config")["data"]
        if files:
            assert {v: config[v] for v in RATE_LIMIT_VARS} == expected
        settings = Settings.from_env(
            {**config, "APP_ENV": "test", "CURSOR_SECRET": "c" * 32}
        )
        RateLimits(settings)  # ConfigError on a bucket or strategy it cannot use
