"""Round 2 of the chart: spread, scale, escape hatches, GitOps, Gateway API.

Each test renders the chart with the option on and checks the wiring the code
relies on: the env a setting needs reaches the container, volumes are mounted
where the paths point, selectors select the right pods, grace periods cover the
work a terminated pod still has.
"""

from __future__ import annotations

import pytest

from tests.deploy.test_deploy_wiring import (
    actor_queues_and_limits,
    app_containers,
    dramatiq_argv,
    env_of,
    resolve,
)

SPREAD_KEYS = {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def _deployments(rendered, prefix="twitter-"):
    return {
        d["metadata"]["name"]: d
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["name"].startswith(prefix)
        and d["metadata"]["labels"].get("app.kubernetes.io/name") == "twitter"
    }


def _main(obj, k8s, name):
    return next(c for c in k8s.pod_spec(obj)["containers"] if c["name"] == name)


# -- 1. spread and scheduling ---------------------------------------------------


@pytest.mark.parametrize("mode", ["default", "external"])
def test_api_and_workers_spread_over_zones_and_nodes_by_default(helm, k8s, mode):
    rendered = helm.render_mode(mode)
    deployments = _deployments(rendered)
    assert {"twitter-api", "twitter-worker-default"} <= set(deployments)
    for name, obj in deployments.items():
        spec = k8s.pod_spec(obj)
        constraints = spec["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == SPREAD_KEYS, name
        own = k8s.pod_metadata(obj)["labels"]
        others = [
            k8s.pod_metadata(o)["labels"] for n, o in deployments.items() if n != name
        ]
        for c in constraints:
            # Soft, so kind's single node still schedules everything.
            assert c["whenUnsatisfiable"] == "ScheduleAnyway", name
            selector = c["labelSelector"]["matchLabels"]
            assert selector.items() <= own.items(), name
            assert not any(selector.items() <= o.items() for o in others), name
            # Old and new ReplicaSet are counted apart during a rollout.
            assert c["matchLabelKeys"] == ["pod-template-hash"], name


def test_spread_and_scheduling_are_overridable_per_component(helm, k8s):
    rendered = helm.render_mode("all-features")
    api = k8s.pod_spec(rendered.get("Deployment", "twitter-api"))
    fanout = k8s.pod_spec(rendered.get("Deployment", "twitter-worker-fanout"))
    bulk = k8s.pod_spec(rendered.get("Deployment", "twitter-worker-bulk"))
    assert api["priorityClassName"] == "twitter-api"
    assert api["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert api["tolerations"][0]["value"] == "api"
    assert "nodeAffinity" in api["affinity"]
    assert fanout["priorityClassName"] == bulk["priorityClassName"] == "twitter-workers"
    assert {c["topologyKey"] for c in fanout["topologySpreadConstraints"]} == (
        SPREAD_KEYS
    )
    assert "topologySpreadConstraints" not in bulk, "a group's [] turns spreading off"
    assert bulk["tolerations"][0]["value"] == "bulk"
    assert "tolerations" not in fanout and "nodeSelector" not in fanout


def test_node_selectors_merge_and_the_most_specific_wins(helm, k8s):
    rendered = helm.render(
        sets=(
            "nodeSelector.pool=general",
            "nodeSelector.disk=ssd",
            "api.nodeSelector.pool=web",
            "workers[0].name=default",
            "workers[0].queues={fanout,fanout_bulk,timeline}",
            "workers[0].nodeSelector.pool=jobs",
            "workers[0].priorityClassName=batch",
            "workerDefaults.priorityClassName=workers",
        )
    )
    api = k8s.pod_spec(rendered.get("Deployment", "twitter-api"))
    worker = k8s.pod_spec(rendered.get("Deployment", "twitter-worker-default"))
    migrate = k8s.pod_spec(rendered.get("Job", "twitter-migrate-1"))
    assert api["nodeSelector"] == {"pool": "web", "disk": "ssd"}
    assert worker["nodeSelector"] == {"pool": "jobs", "disk": "ssd"}
    assert migrate["nodeSelector"] == {"pool": "general", "disk": "ssd"}
    assert worker["priorityClassName"] == "batch"
    assert "priorityClassName" not in api


# -- 6. escape hatches ---------------------------------------------------------------


def _mount_for(path: str, container: dict, spec: dict) -> dict | None:
    """The volume mounted over ``path`` in ``container``, if any."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    best = None
    for mount in container.get("volumeMounts") or []:
        root = mount["mountPath"].rstrip("/")
        inside = path == root or path.startswith(root + "/")
        if inside and (best is None or len(root) > len(best[0])):
            best = (root, volumes[mount["name"]])
    return best[1] if best else None


def test_private_ca_bundle_reaches_every_process_that_connects(helm, k8s):
    """The documented CA-bundle recipe: SSL_CERT_FILE and PGSSLROOTCERT point into
    the CA volume in every container that talks to Postgres, Redis or RabbitMQ:
    API, workers, their wait-for-schema init containers and the migration Job."""
    rendered = helm.render_mode("all-features")
    roles = set()
    for role, obj, container in app_containers(rendered, k8s):
        where = f"{obj['metadata']['name']}/{container['name']}"
        env = resolve(env_of(rendered, container))
        spec = k8s.pod_spec(obj)
        for var in ("SSL_CERT_FILE", "PGSSLROOTCERT"):
            assert var in env, f"{where} lacks {var}"
            volume = _mount_for(env[var], container, spec)
            assert volume is not None, f"{where}: nothing mounted at {env[var]}"
            assert volume.get("configMap", {}).get("name") == "private-ca", where
        roles.add(role)
    assert roles == {"api", "worker", "wait", "migrate"}


def test_extras_land_in_the_right_places(helm, k8s):
    rendered = helm.render_mode("all-features")
    api = rendered.get("Deployment", "twitter-api")
    spec = k8s.pod_spec(api)
    main = _main(api, k8s, "api")
    # Sidecars run beside the app; init containers run before wait-for-schema, so
    # a native-sidecar PgBouncer is up before anything connects.
    assert [c["name"] for c in spec["containers"]] == ["api", "log-shipper"]
    assert [c["name"] for c in spec["initContainers"]][-2:] == [
        "warm-up",
        "wait-for-schema",
    ]
    assert {"configMapRef": {"name": "api-extra"}} in main["envFrom"]
    assert main["envFrom"][0]["configMapRef"]["name"] == "twitter-config"
    worker = rendered.get("Deployment", "twitter-worker-fanout")
    inits = k8s.pod_spec(worker)["initContainers"]
    names = [c["name"] for c in inits]
    assert names.index("pgbouncer") < names.index("wait-for-schema")
    assert inits[names.index("pgbouncer")]["restartPolicy"] == "Always"
    # Group lists add to workerDefaults'.
    bulk = _main(rendered.get("Deployment", "twitter-worker-bulk"), k8s, "worker")
    bulk_env = {e["name"] for e in bulk["env"]}
    assert {"BULK_ONLY", "SSL_CERT_FILE"} <= bulk_env
    fanout_env = {e["name"] for e in _main(worker, k8s, "worker")["env"]}
    assert "BULK_ONLY" not in fanout_env
    # Every extra mount names a volume of its pod.
    for obj in rendered.workloads():
        pod = k8s.pod_spec(obj)
        volumes = {v["name"] for v in pod.get("volumes") or []}
        for container in k8s.containers(obj):
            for mount in container.get("volumeMounts") or []:
                assert mount["name"] in volumes, (obj["metadata"]["name"], mount)


def test_pod_labels_annotations_and_common_labels(helm, k8s):
    rendered = helm.render_mode("all-features")
    api = rendered.get("Deployment", "twitter-api")
    labels = k8s.pod_metadata(api)["labels"]
    assert labels["tier"] == "web" and labels["cost-center"] == "social"
    assert k8s.pod_metadata(api)["annotations"]["example.com/owner"] == "api-team"
    migrate = next(
        j for j in rendered.of_kind("Job") if "migrate" in j["metadata"]["name"]
    )
    assert k8s.pod_metadata(migrate)["labels"]["tier"] == "batch"
    for obj in rendered:
        labels = obj["metadata"].get("labels") or {}
        # global.commonLabels: every object, the bundled data services included
        assert labels.get("cost-center") == "social-backend", obj["metadata"]["name"]
        if labels.get("app.kubernetes.io/name") != "twitter":
            assert "team" not in labels  # commonLabels: this chart's objects only
            continue
        assert labels.get("team") == "timelines", obj["metadata"]["name"]
        selector = (obj.get("spec") or {}).get("selector") or {}
        selector = selector.get("matchLabels", selector)
        assert "team" not in selector, "commonLabels must never enter a selector"
        assert "cost-center" not in selector
        assert "tier" not in selector


@pytest.mark.parametrize(
    "item, where",
    [
        ("api.extraEnv[0].value=x", "/api/extraEnv/0"),  # no name
        ("api.extraEnvv[0].name=X", "extraEnvv"),
        ("workers[0].sidecar[0].name=x", "sidecar"),
        (
            "api.topologySpreadConstraints[0].whenUnsatisfiable=Maybe",
            "whenUnsatisfiable",
        ),
        ("workerDefaults.topologySpreadConstraints[0].maxSkeww=1", "maxSkeww"),
        ("config.brokerQueueType=stream", "brokerQueueType"),
        ("redis.external.mode=sentinel", "/redis/external/mode"),
        ("redis.external.seedNodes[0]=no-port", "/redis/external/seedNodes/0"),
        ("workerDefaults.autoscaling.keda.protocl=amqp", "protocl"),
        ("httpRoute.enabled=true", "parentRefs"),
        ("migrations.jobNameFrom=commit", "jobNameFrom"),
    ],
)
def test_schema_stays_strict_for_the_new_values(helm, k8s, item, where):
    from tests.deploy.test_deploy_schema import rejected

    assert where in rejected(helm, k8s, item)


# -- 2. worker autoscaling ----------------------------------------------------------


def test_keda_scales_each_group_on_its_own_queues(helm, k8s):
    rendered = helm.render_mode("all-features")
    scaled = {s["metadata"]["name"]: s for s in rendered.of_kind("ScaledObject")}
    hpas = {
        h["metadata"]["name"]: h for h in rendered.of_kind("HorizontalPodAutoscaler")
    }
    # fanout: KEDA (workerDefaults); bulk: its own CPU HPA. Never both on one target.
    assert set(scaled) == {"twitter-worker-fanout"}
    assert "twitter-worker-bulk" in hpas and "twitter-worker-fanout" not in hpas
    obj = scaled["twitter-worker-fanout"]
    target = obj["spec"]["scaleTargetRef"]
    deployment = rendered.get("Deployment", target["name"])
    assert target["kind"] == "Deployment"
    assert "replicas" not in deployment["spec"], "the autoscaler owns the count"
    worker = _main(deployment, k8s, "worker")
    args = dramatiq_argv(worker["command"])
    queues = args[args.index("--queues") + 1 :]
    triggers = obj["spec"]["triggers"]
    assert sorted(t["metadata"]["queueName"] for t in triggers) == sorted(queues)
    env = env_of(rendered, worker)
    for trigger in triggers:
        meta = trigger["metadata"]
        assert trigger["type"] == "rabbitmq" and meta["mode"] == "QueueLength"
        # KEDA reads these from the scale target's container, as the app does.
        for key in ("hostFromEnv", "usernameFromEnv", "passwordFromEnv"):
            assert meta[key] in env, f"{key}: {meta[key]} not in the worker's env"
        assert env[meta["passwordFromEnv"]][0] == "secret"
    resolved = resolve(env)
    assert resolved[triggers[0]["metadata"]["hostFromEnv"]].startswith("amqp://")
    bulk = rendered.get(
        "Deployment", hpas["twitter-worker-bulk"]["spec"]["scaleTargetRef"]["name"]
    )
    assert "replicas" not in bulk["spec"]


def test_keda_can_reach_the_bundled_broker(helm, k8s):
    """KEDA's operator, in a namespace of its own, reads queue depths over AMQP:
    the bundled RabbitMQ's NetworkPolicy must admit it."""
    rendered = helm.render_mode("all-features")
    assert rendered.of_kind("ScaledObject")
    policy = rendered.get("NetworkPolicy", "twitter-rabbitmq")
    (rule,) = policy["spec"]["ingress"]
    assert {"port": "amqp", "protocol": "TCP"} in rule["ports"]
    namespaces = [
        p["namespaceSelector"]["matchLabels"]
        for p in rule["from"]
        if "namespaceSelector" in p
    ]
    assert {"kubernetes.io/metadata.name": "keda"} in namespaces


@pytest.mark.parametrize("mode", ["default", "all-features"])
def test_scale_down_never_kills_a_fanout_chunk_unredone(helm, k8s, mode):
    """A pod removed by KEDA/HPA gets SIGTERM like in a rollout: dramatiq must
    finish the chunk it runs (shutdown timeout > the longest actor time limit)
    before the kubelet's SIGKILL (grace period > shutdown timeout); a chunk it
    cannot finish stays unacked and RabbitMQ redelivers it."""
    import dramatiq.cli

    _queues, limits = actor_queues_and_limits(k8s)
    longest_s = max(limits) / 1000
    rendered = helm.render_mode(mode)
    targets = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in rendered.of_kind("ScaledObject")
        + rendered.of_kind("HorizontalPodAutoscaler")
    }
    if mode == "all-features":
        assert {"twitter-worker-fanout", "twitter-worker-bulk"} <= targets
    parser = dramatiq.cli.make_argument_parser()
    for name, obj in _deployments(rendered, "twitter-worker-").items():
        spec = k8s.pod_spec(obj)
        argv = dramatiq_argv(_main(obj, k8s, "worker")["command"])[1:]
        if "--watch" in argv:  # dev mode: the folder exists only in the pod
            at = argv.index("--watch")
            argv = argv[:at] + argv[at + 2 :]
        args = parser.parse_args(argv)
        shutdown_s = args.worker_shutdown_timeout / 1000
        assert longest_s < shutdown_s < spec["terminationGracePeriodSeconds"], name
    for obj in rendered.of_kind("ScaledObject"):
        scale_down = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"][
            "behavior"
        ]["scaleDown"]
        assert scale_down["policies"] == [
            {"type": "Pods", "value": 1, "periodSeconds": 60}
        ]
    # Redelivery needs late acks: Dramatiq acks after the actor returns, and
    # the fan-out actors are retried (and idempotent), never fire-and-forget.
    from workers.actors import timelines

    for actor in (timelines.fanout_tweet, timelines.fanout_chunk):
        assert actor.options["max_retries"] > 0, actor.actor_name


# -- 3. queue type ------------------------------------------------------------------


def test_queue_type_reaches_the_broker_of_every_process(helm, k8s, tmp_path):
    from core.settings import Settings
    from workers.broker import make_broker

    for sets, expected in (
        ((), "quorum"),
        (("config.brokerQueueType=classic",), "classic"),
    ):
        rendered = helm.render(sets=sets)
        for _role, _obj, container in app_containers(rendered, k8s):
            env = resolve(env_of(rendered, container))
            env["JWT_PUBLIC_KEYS_PATH"] = str(tmp_path)
            settings = Settings.from_env(env)
            assert settings.broker_queue_type == expected
        # That the broker declares its queues with this type, on a real RabbitMQ:
        # tests/workers/test_quorum_queues.py.
        assert make_broker(settings).queue_type == expected


# -- B. Redis Cluster ------------------------------------------------------------------


def test_redis_cluster_mode_reaches_api_workers_and_migrations(helm, k8s):
    rendered = helm.render_mode("external")
    roles = set()
    for role, obj, container in app_containers(rendered, k8s):
        env = env_of(rendered, container)
        values = resolve(env)
        where = f"{obj['metadata']['name']}/{container['name']}"
        assert values["REDIS_MODE"] == "cluster", where
        # Any node will do; TLS and the password come as for a single Redis.
        assert values["REDIS_URL"] == (
            "rediss://redis-cluster-0.redis-cluster-headless:6379/0"
        ), where
        assert env["REDIS_PASSWORD"] == ("secret", "redis-auth", "password"), where
        roles.add(role)
    assert roles == {"api", "worker", "wait", "migrate"}
    for mode in ("default", "external-hook"):
        for _role, _obj, container in app_containers(helm.render_mode(mode), k8s):
            assert resolve(env_of(helm.render_mode(mode), container))["REDIS_MODE"] == (
                "single"
            )


def test_redis_cluster_without_seeds_uses_host_and_refuses_other_databases(helm, k8s):
    base = ("redis.enabled=false", "redis.host=rc", "redis.external.mode=cluster")
    rendered = helm.render(sets=base)
    _, _, api = next(r for r in app_containers(rendered, k8s) if r[0] == "api")
    assert resolve(env_of(rendered, api))["REDIS_URL"] == "redis://rc:6379/0"
    # The bundled Redis stays single whatever the external block says.
    rendered = helm.render(sets=("redis.external.mode=cluster",))
    _, _, api = next(r for r in app_containers(rendered, k8s) if r[0] == "api")
    assert resolve(env_of(rendered, api))["REDIS_MODE"] == "single"
    proc = helm.run(
        "template",
        "twitter",
        str(k8s.chart),
        *sum((["--set", s] for s in base), []),
        "--set",
        "redis.database=3",
        check=False,
    )
    assert proc.returncode != 0 and "database must be 0" in proc.stderr


# -- 5. migrations under GitOps --------------------------------------------------------


def test_migration_job_is_an_argo_cd_hook_with_a_stable_name(helm, k8s):
    job = next(
        j
        for j in helm.render_mode("default").of_kind("Job")
        if "migrate" in j["metadata"]["name"]
    )
    annotations = job["metadata"]["annotations"]
    # helm: a normal Job per revision; Argo CD: a Sync hook recreated every sync.
    assert "helm.sh/hook" not in annotations
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    hook = helm.render_mode("external-hook").get("Job", "twitter-migrate")
    annotations = hook["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert k8s.hook_events(hook) == {"pre-install", "pre-upgrade"}


def test_migration_job_named_after_the_image_for_plain_apply(helm, k8s):
    def name(*sets):
        rendered = helm.render(sets=("migrations.jobNameFrom=image", *sets))
        (job,) = [
            j for j in rendered.of_kind("Job") if "migrate" in j["metadata"]["name"]
        ]
        return job["metadata"]["name"]

    first = name("image.tag=1.0.0")
    assert first == name("image.tag=1.0.0"), "stable for one image"
    assert first != name("image.tag=1.0.1"), "a new image runs its own migrations"
    assert first != name("image.digest=sha256:" + "a" * 64)
    assert len(first) <= 63 and first.startswith("twitter-migrate-")
    long = name("fullnameOverride=" + "x" * 60)
    assert len(long) <= 63


# -- 8. helm test pods get through the NetworkPolicy -----------------------------------


@pytest.mark.parametrize("mode", ["default", "all-features"])
def test_network_policy_admits_the_helm_test_pods(helm, k8s, mode):
    rendered = helm.render_mode(mode)
    policy = rendered.get("NetworkPolicy", "twitter-api")
    tests = [p for p in rendered.of_kind("Pod") if k8s.hook_events(p) == {"test"}]
    assert {p["metadata"]["name"] for p in tests} >= {
        "twitter-test-readiness",
        "twitter-test-roundtrip",
    }
    service = rendered.get("Service", "twitter-api")
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    for pod in tests:
        labels = pod["metadata"]["labels"]
        # The pod calls the Service's http port (API_URL), which the policy opens.
        api_url = next(
            e["value"]
            for e in pod["spec"]["containers"][0]["env"]
            if e["name"] == "API_URL"
        )
        assert api_url == f"http://twitter-api:{http['port']}"
        admitted = False
        for rule in policy["spec"]["ingress"]:
            if not any(p["port"] == http["targetPort"] for p in rule["ports"]):
                continue
            peers = rule.get("from")
            if peers is None:
                admitted = True  # open to all
            for peer in peers or []:
                selector = peer.get("podSelector")
                same_namespace = selector and "namespaceSelector" not in peer
                if same_namespace and selector["matchLabels"].items() <= labels.items():
                    admitted = True
        assert admitted, f"{mode}: {pod['metadata']['name']} is not admitted"


def test_round_trip_exercises_the_workers_and_cleans_up(k8s):
    script = (k8s.chart / "files" / "tests" / "roundtrip.py").read_text()
    for route in ('"/user/follow', '"/timeline/home"', '"DELETE", "/user"'):
        assert route in script
    # Run for real against gunicorn + a worker in tests/e2e (helm test round trip).


# -- A + 11. metrics port and Gateway API ----------------------------------------------


def test_metrics_port_is_on_the_service_but_never_routed(helm, k8s):
    rendered = helm.render_mode("all-features")
    service = rendered.get("Service", "twitter-api")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["metrics"]["targetPort"] == "metrics"
    api = _main(rendered.get("Deployment", "twitter-api"), k8s, "api")
    container_ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    config = rendered.get("ConfigMap", "twitter-config")["data"]
    assert container_ports["metrics"] == int(config["METRICS_PORT"]) == 9190
    assert container_ports["http"] == int(config["PORT"])
    ingress = rendered.get("Ingress", "twitter-api")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["port"] == {"name": "http"}
    route = rendered.get("HTTPRoute", "twitter-api")
    for rule in route["spec"]["rules"]:
        for backend in rule["backendRefs"]:
            assert backend["name"] == "twitter-api"
            assert backend["port"] == ports["http"]["port"] != ports["metrics"]["port"]


def test_metrics_port_must_differ_from_the_api_port(helm, k8s):
    from tests.deploy.test_deploy_schema import rejected

    assert "must differ" in rejected(helm, k8s, "api.metricsPort=8000")


def test_httproute_only_when_enabled_and_from_values(helm, k8s):
    import yaml

    assert not helm.render_mode("default").of_kind("HTTPRoute")
    values = yaml.safe_load(k8s.modes["all-features"][0].read_text())["httpRoute"]
    route = helm.render_mode("all-features").get("HTTPRoute", "twitter-api")
    assert route["spec"]["parentRefs"] == values["parentRefs"]
    assert route["spec"]["hostnames"] == values["hostnames"]
    # Next to the Ingress, not instead of it.
    assert helm.render_mode("all-features").get("Ingress", "twitter-api")
