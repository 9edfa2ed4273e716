"""skaffold.yaml points at things that exist; the Skaffold-free loop does the same."""

from __future__ import annotations

import copy
import glob
import os
import re
import stat
import subprocess

import pytest
import yaml


@pytest.fixture(scope="module")
def skaffold(k8s):
    return yaml.safe_load((k8s.root / "skaffold.yaml").read_text())


def apply_patch(config: dict, patch: dict) -> dict:
    """The subset of RFC 6902 the profiles use (add/replace by JSON pointer)."""
    config = copy.deepcopy(config)
    *parents, last = [p for p in patch["path"].split("/")[1:]]
    node = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if patch["op"] == "add" and isinstance(node, list):
        node.insert(len(node) if last == "-" else int(last), patch["value"])
    elif patch["op"] in ("add", "replace"):
        node[int(last) if isinstance(node, list) else last] = patch["value"]
    else:
        raise AssertionError(f"unsupported op {patch['op']}")
    return config


def test_schema_version_is_current_and_pinned_in_the_docs(skaffold, k8s):
    assert re.fullmatch(r"skaffold/v4beta\d+", skaffold["apiVersion"])
    assert skaffold["kind"] == "Config"
    docs = (k8s.chart / "README.md").read_text()  # the Kubernetes docs
    assert skaffold["apiVersion"] in docs
    assert re.search(r"Skaffold v2\.\d+\.\d+", docs), "pin the Skaffold version"


def test_one_artifact_built_from_the_dockerfile(skaffold, k8s):
    artifacts = skaffold["build"]["artifacts"]
    assert len(artifacts) == 1
    artifact = artifacts[0]
    context = k8s.root / artifact.get("context", ".")
    assert (context / artifact["docker"]["dockerfile"]).exists()
    dockerfile = (context / artifact["docker"]["dockerfile"]).read_text()
    for arg in artifact["docker"].get("buildArgs", {}):
        assert re.search(rf"^ARG {arg}\b", dockerfile, re.M), arg
    assert skaffold["build"]["local"]["push"] is False


def test_sync_rules_match_sources_and_the_image_layout(skaffold, k8s):
    artifact = skaffold["build"]["artifacts"][0]
    rules = artifact["sync"]["manual"]
    for rule in rules:
        assert rule["dest"] == "/app", "the image runs /app (PYTHONPATH)"
        assert glob.glob(str(k8s.root / rule["src"]), recursive=True), rule["src"]
    synced = {rule["src"].split("/")[0] for rule in rules}
    assert synced == k8s.packages(), "every package of the project is synced"


def _release(config):
    releases = config["deploy"]["helm"]["releases"]
    assert len(releases) == 1
    return releases[0]


def _render(helm, k8s, config):
    release = _release(config)
    artifact = config["build"]["artifacts"][0]["image"]
    var = re.sub(r"[^A-Za-z0-9]", "_", artifact)
    sets = []
    for key, template in release["setValueTemplates"].items():
        value = template.replace(f"{{{{.IMAGE_REPO_{var}}}}}", artifact)
        value = value.replace(f"{{{{.IMAGE_TAG_{var}}}}}", "abc123")
        assert "{{" not in value, f"unknown template in {template}"
        sets.append(f"{key}={value}")
    files = [k8s.root / path for path in release["valuesFiles"]]
    return helm.render(*files, chart=k8s.root / release["chartPath"], sets=tuple(sets))


def test_helm_release_renders_with_the_built_image(helm, skaffold, k8s):
    release = _release(skaffold)
    assert release["name"] == k8s.release
    assert (k8s.root / release["chartPath"] / "Chart.yaml").exists()
    assert set(release["setValueTemplates"]) == {"image.repository", "image.tag"}
    rendered = _render(helm, k8s, skaffold)
    api = rendered.get("Deployment", "twitter-api")
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "twitter-backend:abc123"
    )
    assert "--reload" in api["spec"]["template"]["spec"]["containers"][0]["command"]


def test_port_forward_targets_the_api_service(helm, skaffold, k8s):
    rendered = _render(helm, k8s, skaffold)
    (forward,) = skaffold["portForward"]
    assert forward["resourceType"] == "service"
    service = rendered.get("Service", forward["resourceName"])
    assert forward["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert forward["namespace"] == _release(skaffold)["namespace"]


@pytest.mark.parametrize(
    ("profile", "context", "ingress_class"),
    [("kind", "kind-twitter", "traefik"), ("minikube", "minikube", "nginx")],
)
def test_profiles_activate_on_their_cluster_and_render(
    helm, skaffold, k8s, profile, context, ingress_class
):
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    assert set(profiles) == {"kind", "minikube"}
    chosen = profiles[profile]
    assert {"kubeContext": context} in chosen["activation"]
    config = skaffold
    for patch in chosen["patches"]:
        config = apply_patch(config, patch)
    rendered = _render(helm, k8s, config)
    ingress = rendered.get("Ingress", "twitter-api")
    assert ingress["spec"]["ingressClassName"] == ingress_class
    kind_config = yaml.safe_load((k8s.root / "k8s" / "kind-config.yaml").read_text())
    assert (
        f"kind-{kind_config['name']}"
        == profiles["kind"]["activation"][0]["kubeContext"]
    )


def test_kind_cluster_config_is_ingress_ready(k8s):
    config = yaml.safe_load((k8s.root / "k8s" / "kind-config.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = config["nodes"]
    assert "ingress-ready=true" in node["kubeadmConfigPatches"][0]
    ports = {(m["containerPort"], m["hostPort"]) for m in node["extraPortMappings"]}
    assert ports == {(80, 80), (443, 443)}
    traefik = yaml.safe_load((k8s.root / "k8s" / "traefik-values.yaml").read_text())
    assert traefik["nodeSelector"] == {"ingress-ready": "true"}
    assert traefik["ports"]["web"]["hostPort"] == 80
    assert traefik["ports"]["websecure"]["hostPort"] == 443
    assert traefik["ingressClass"]["name"] == "traefik"
    # hostPorts on one node: a surge pod could never schedule.
    assert traefik["updateStrategy"]["rollingUpdate"]["maxSurge"] == 0


def _stub(bin_dir, name, log, script=""):
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{script}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_kind_dev_script_builds_loads_installs_and_tests(k8s, tmp_path):
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(
        bin_dir,
        "docker",
        log,
        'case "$1" in image) echo sha256:0123456789abcdef0123;; esac',
    )
    _stub(bin_dir, "kind", log, 'case "$1" in get) echo other;; esac')
    _stub(bin_dir, "helm", log)
    # No Traefik IngressClass yet; everything else succeeds.
    _stub(bin_dir, "kubectl", log, 'case "$*" in *ingressclass*) exit 1;; esac')
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HELM": str(bin_dir / "helm"),
        "KUBECTL": str(bin_dir / "kubectl"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        ["bash", str(k8s.root / "scripts" / "kind-dev.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    order = [c.split()[0] + " " + c.split()[1] for c in calls]
    assert order.index("kind create") < order.index("docker build")
    build = next(c for c in calls if c.startswith("docker build"))
    load = next(c for c in calls if c.startswith("kind load"))
    upgrade = next(c for c in calls if " upgrade --install twitter " in c)
    test = next(c for c in calls if " test twitter" in c)
    assert (
        calls.index(build)
        < calls.index(load)
        < calls.index(upgrade)
        < calls.index(test)
    )
    assert "twitter-backend:dev-0123456789ab" in load
    assert "--name twitter" in load
    for flag in ("--wait", "--wait-for-jobs", "--kube-context kind-twitter"):
        assert flag in upgrade
    assert "image.tag=dev-0123456789ab" in upgrade
    assert "k8s/values-kind.yaml" in upgrade
    assert any("traefik-values.yaml" in c for c in calls)
    assert "--logs" in test
    label = next(c for c in calls if c.startswith("kubectl") and " label " in c)
    assert "pod-security.kubernetes.io/enforce=restricted" in label
    assert calls.index(label) < calls.index(upgrade)


def test_kind_dev_script_is_executable_bash(k8s):
    script = k8s.root / "scripts" / "kind-dev.sh"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_namespace_manifest_enforces_the_restricted_pod_security_standard(k8s):
    namespace = yaml.safe_load((k8s.root / "k8s" / "namespace.yaml").read_text())
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["name"] == k8s.namespace
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    try:
        from kubernetes_validate import utils
    except ImportError:
        k8s.missing_tool("kubernetes-validate is not installed (pip: test extra)")
    utils.validate(namespace, "1.30.0", strict=True)
