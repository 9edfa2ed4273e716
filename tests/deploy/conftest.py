"""Deploy-test fixtures: pinned helm/kubectl, chart rendering, a fake API server.

No cluster and no Docker engine are needed. Tools missing here make a test skip
locally but fail in CI (``CI`` set), so a broken CI machine cannot pass silently.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "twitter"
SUBCHARTS = {
    name: CHART / "charts" / name for name in ("postgres", "redis", "rabbitmq")
}
RELEASE = "twitter"
NAMESPACE = "twitter"
# Values files of the render modes every structural test runs against.
MODES = {
    "default": (),
    "all-features": (CHART / "ci" / "all-features-values.yaml",),
    "external": (CHART / "ci" / "external-values.yaml",),
    "external-hook": (CHART / "ci" / "external-hook-values.yaml",),
}

if str(ROOT) not in sys.path:  # `core` and `keys` when the project is not installed
    sys.path.insert(0, str(ROOT))


def missing_tool(message: str):
    """Skip locally, fail in CI: a CI run must never pass without its tools."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@lru_cache(maxsize=1)
def _install_tools() -> Path | None:
    script = ROOT / "scripts" / "install-k8s-tools.py"
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """Paths of the pinned helm and kubectl (installed into .tools/ on first use)."""
    bin_dir = _install_tools()
    if bin_dir is None:
        missing_tool("helm/kubectl missing: run `python scripts/install-k8s-tools.py`")
    return {"helm": str(bin_dir / "helm"), "kubectl": str(bin_dir / "kubectl")}


class Rendered(list):
    """Objects of one `helm template` run, with lookups by kind and name."""

    def __init__(self, objects, text: str):
        super().__init__(objects)
        self.text = text

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        for obj in self:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        names = [o["metadata"]["name"] for o in self.of_kind(kind)]
        raise AssertionError(f"no {kind} {name!r}; have {names}")

    def find(self, kind: str, name: str) -> dict | None:
        try:
            return self.get(kind, name)
        except AssertionError:
            return None

    def workloads(self) -> list[dict]:
        kinds = ("Deployment", "StatefulSet", "Job", "Pod")
        return [o for o in self if o["kind"] in kinds]


def pod_spec(obj: dict) -> dict:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def pod_metadata(obj: dict) -> dict:
    return (
        obj["metadata"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]
    )


def hook_events(obj: dict) -> set[str]:
    raw = (obj["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return {e.strip() for e in raw.split(",") if e.strip()}


def hook_weight(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get("helm.sh/hook-weight", 0))


class Helm:
    """Runs the pinned helm against the charts; renders are cached per arguments."""

    def __init__(self, binary: str):
        self.binary = binary
        self._cache: dict[tuple, Rendered] = {}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache"},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def template_text(
        self, *values_files: Path, chart: Path = CHART, sets: tuple[str, ...] = ()
    ) -> str:
        args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
        for path in values_files:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        return self.run(*args).stdout

    def render(
        self, *values_files: Path, chart: Path = CHART, sets: tuple[str, ...] = ()
    ) -> Rendered:
        import yaml

        key = (tuple(map(str, values_files)), str(chart), tuple(sets))
        if key not in self._cache:
            text = self.template_text(*values_files, chart=chart, sets=sets)
            objects = [o for o in yaml.safe_load_all(text) if o]
            self._cache[key] = Rendered(objects, text)
        return copy.deepcopy(self._cache[key])

    def render_mode(self, mode: str) -> Rendered:
        return self.render(*MODES[mode])


@pytest.fixture(scope="session")
def helm(tools) -> Helm:
    return Helm(tools["helm"])


# --------------------------------------------------------------------------
# A fake Kubernetes API server for Secrets, faithful enough for the real
# `kubernetes` client: the same paths, verbs, Status objects and preconditions.
# --------------------------------------------------------------------------

SECRET_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?$")
DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
VERB_BY_METHOD = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update"}
PATCH_TYPES = (
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _status(code: int, reason: str, message: str, name: str | None = None) -> dict:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name is not None:
        status["details"] = {"name": name, "kind": "secrets"}
    return status


def _merge(target, patch):
    """RFC 7386 JSON merge patch (what strategic merge does for a Secret's maps)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


class FakeKube:
    """State and RBAC of the fake API server; tests read ``requests`` afterwards."""

    user = "system:serviceaccount:twitter:twitter-keys"

    def __init__(self):
        self.secrets: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # verb, ns, name
        self.rules: list[dict] | None = None  # None allows everything
        self.before_create = None  # hook(ns, name) run before a create is applied
        self._rv = 100
        self._lock = threading.Lock()
        self.url = ""

    # -- helpers for tests -------------------------------------------------
    def allow(self, rules: list[dict] | None) -> None:
        """Enforce these RBAC rules (Role.rules shape) from now on."""
        self.rules = rules

    def secret_data(self, ns: str, name: str) -> dict[str, bytes] | None:
        obj = self.secrets.get((ns, name))
        if obj is None:
            return None
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    def put_secret(self, ns: str, name: str, data: dict[str, bytes], **meta) -> dict:
        obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": ns, **meta},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
        with self._lock:
            self._store(obj)
        return obj

    def verbs_used(self) -> set[str]:
        return {verb for verb, _, _ in self.requests}

    # -- server internals --------------------------------------------------
    def _store(self, obj: dict) -> dict:
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        meta.setdefault("uid", f"uid-{meta['name']}-{self._rv}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.secrets[(meta["namespace"], meta["name"])] = obj
        return obj

    def _permitted(self, verb: str, name: str | None) -> bool:
        if self.rules is None:
            return True
        for rule in self.rules:
            if "" not in rule.get("apiGroups", []):
                continue
            if "secrets" not in rule.get("resources", []):
                continue
            if verb not in rule.get("verbs", []) and "*" not in rule["verbs"]:
                continue
            names = rule.get("resourceNames")
            if names and (name is None or name not in names):
                continue
            return True
        return False

    def handle(self, method: str, path: str, headers, body: bytes):
        match = SECRET_PATH.match(path.split("?", 1)[0])
        if not match:
            return 404, _status(
                404, "NotFound", "the server could not find the resource"
            )
        ns, name = match.group(1), match.group(2)
        verb = VERB_BY_METHOD.get(method, method.lower())
        if method == "GET" and name is None:
            verb = "list"
        if method == "POST":
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                return 400, _status(400, "BadRequest", "invalid JSON")
            target = (payload.get("metadata") or {}).get("name")
        else:
            payload, target = None, name
        with self._lock:
            self.requests.append((verb, ns, target))
        if not self._permitted(verb, target):
            what = f'secrets "{target}"' if target and method != "POST" else "secrets"
            message = (
                f'{what} is forbidden: User "{self.user}" cannot {verb} resource '
                f'"secrets" in API group "" in the namespace "{ns}"'
            )
            return 403, _status(403, "Forbidden", message, target)
        with self._lock:
            return getattr(self, f"_{verb}")(ns, name, headers, body, payload)

    def _get(self, ns, name, headers, body, payload):
        obj = self.secrets.get((ns, name))
        if obj is None:
            return 404, _status(404, "NotFound", f'secrets "{name}" not found', name)
        return 200, obj

    def _list(self, ns, name, headers, body, payload):
        items = [o for (n, _), o in sorted(self.secrets.items()) if n == ns]
        return 200, {
            "kind": "SecretList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _validate(self, obj: dict, name: str):
        for key, value in (obj.get("data") or {}).items():
            if not DATA_KEY.match(key):
                return _status(
                    422, "Invalid", f'Secret "{name}" is invalid: data[{key}]', name
                )
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                return _status(422, "Invalid", f"data[{key}]: illegal base64", name)
        return None

    def _create(self, ns, name, headers, body, payload):
        meta = payload.get("metadata") or {}
        name = meta.get("name")
        if not name:
            return 422, _status(422, "Invalid", "metadata.name: Required value")
        if self.before_create is not None:
            self._lock.release()
            try:
                self.before_create(ns, name)
            finally:
                self._lock.acquire()
        if (ns, name) in self.secrets:
            return 409, _status(
                409, "AlreadyExists", f'secrets "{name}" already exists', name
            )
        if error := self._validate(payload, name):
            return 422, error
        obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": payload.get("type") or "Opaque",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
            },
            "data": payload.get("data") or {},
        }
        return 201, self._store(obj)

    def _conflict(self, name):
        return 409, _status(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on secrets "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            name,
        )

    def _patch(self, ns, name, headers, body, payload):
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            return 415, _status(
                415, "UnsupportedMediaType", f"unsupported patch type {content_type}"
            )
        obj = self.secrets.get((ns, name))
        if obj is None:
            return 404, _status(404, "NotFound", f'secrets "{name}" not found', name)
        patch = json.loads(body or b"{}")
        wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != obj["metadata"]["resourceVersion"]:
            return self._conflict(name)
        merged = _merge(obj, patch)
        merged["metadata"]["name"], merged["metadata"]["namespace"] = name, ns
        if error := self._validate(merged, name):
            return 422, error
        return 200, self._store(merged)

    def _update(self, ns, name, headers, body, payload):
        obj = self.secrets.get((ns, name))
        if obj is None:
            return 404, _status(404, "NotFound", f'secrets "{name}" not found', name)
        new = json.loads(body or b"{}")
        wanted_rv = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != obj["metadata"]["resourceVersion"]:
            return self._conflict(name)
        new.setdefault("metadata", {}).update(name=name, namespace=ns)
        if error := self._validate(new, name):
            return 422, error
        return 200, self._store(new)


def _handler_for(state: FakeKube):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one segment per response, no 40 ms stalls
        wbufsize = 1 << 16

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            code, payload = state.handle(self.command, self.path, self.headers, body)
            raw = json.dumps(payload).encode()
            self.send_response(code, HTTPStatus(code).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, *args):  # keep pytest output clean
            pass

    return Handler


@pytest.fixture
def fake_kube(tmp_path):
    """A running fake API server and a kubeconfig pointing at it."""
    state = FakeKube()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": state.url}}],
                "users": [{"name": "keys", "user": {"token": "fake-token"}}],
                "contexts": [
                    {
                        "name": "fake",
                        "context": {
                            "cluster": "fake",
                            "user": "keys",
                            "namespace": NAMESPACE,
                        },
                    }
                ],
                "current-context": "fake",
            }
        )
    )
    state.kubeconfig = str(kubeconfig)
    yield state
    server.shutdown()
    server.server_close()


def containers(obj: dict, *, init: bool = True) -> list[dict]:
    spec = pod_spec(obj)
    found = list(spec.get("containers") or [])
    if init:
        found += spec.get("initContainers") or []
    return found


def project_packages() -> set[str]:
    """Top-level packages pyproject.toml installs (what the image must contain)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*").rstrip(".") for pattern in include}


@pytest.fixture(scope="session")
def k8s():
    """Helpers for reading rendered objects (fixtures, so no test imports conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        pod_spec=pod_spec,
        pod_metadata=pod_metadata,
        hook_events=hook_events,
        hook_weight=hook_weight,
        containers=containers,
        root=ROOT,
        chart=CHART,
        subcharts=SUBCHARTS,
        modes=MODES,
        release=RELEASE,
        namespace=NAMESPACE,
        missing_tool=missing_tool,
        packages=project_packages,
    )


@pytest.fixture(scope="session", autouse=True)
def services():
    """No Postgres, Redis or RabbitMQ here: overrides the suite-wide autouse fixture."""
    yield
