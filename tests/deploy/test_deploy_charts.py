"""The charts lint, render deterministically, and render valid Kubernetes objects."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

VALIDATE_VERSIONS = ("1.30.0", "latest")
# Custom resources kubernetes-validate has no schema for are validated against our
# own schemas instead, by an explicit allow-list of kinds (apiVersion/kind); any
# other kind without a schema still fails.
CRD_SCHEMAS = Path(__file__).with_name("crd-schemas.json")
# Template functions that make `helm template`, Argo CD and skaffold render
# differently from `helm install`, or differently on every run.
FORBIDDEN_FUNCTIONS = re.compile(
    r"\b(lookup|randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|randInt|"
    r"uuidv4|genPrivateKey|genCA|genSelfSignedCert|genSignedCert|now|date)\b"
)


def _kubernetes_validate():
    try:
        from kubernetes_validate import utils
    except ImportError:
        return None
    return utils


def _all_charts(k8s):
    return [k8s.chart, *k8s.subcharts.values()]


@lru_cache(maxsize=1)
def _crd_validators() -> dict:
    import jsonschema

    doc = json.loads(CRD_SCHEMAS.read_text())
    validators = {}
    for key, schema in doc["kinds"].items():
        schema = {"$defs": doc["$defs"], **schema}
        jsonschema.Draft7Validator.check_schema(schema)
        validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def _crd_problems(obj: dict) -> list[str] | None:
    """Problems of an allow-listed custom resource; None for any other kind."""
    validator = _crd_validators().get(f"{obj['apiVersion']}/{obj['kind']}")
    if validator is None:
        return None
    return [
        f"{'.'.join(str(p) for p in error.path)}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    ]


def test_every_chart_lints_strict(helm, k8s):
    for chart in _all_charts(k8s):
        proc = helm.run("lint", "--strict", str(chart), check=False)
        assert proc.returncode == 0, f"{chart.name}:\n{proc.stdout}\n{proc.stderr}"
    for mode, files in k8s.modes.items():
        args = ["lint", "--strict", str(k8s.chart)]
        for path in files:
            args += ["--values", str(path)]
        proc = helm.run(*args, check=False)
        assert proc.returncode == 0, f"{mode}:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize(
    "mode", ["default", "all-features", "external", "external-hook"]
)
def test_no_mapping_repeats_a_key(helm, k8s, mode):
    """The API server refuses a manifest with a key written twice (e.g. a pod label
    given by both commonLabels and podLabels); PyYAML would keep the last."""
    import yaml

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
        repeated = {k for k in keys if keys.count(k) > 1}
        assert not repeated, (
            f"{mode}: key {repeated} twice at line {node.start_mark.line}"
        )
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    text = helm.template_text(*k8s.modes[mode])
    assert list(yaml.load_all(text, Loader=Strict))


@pytest.mark.parametrize(
    "mode", ["default", "all-features", "external", "external-hook"]
)
def test_render_is_deterministic(helm, k8s, mode):
    files = k8s.modes[mode]
    assert helm.template_text(*files) == helm.template_text(*files)


@pytest.mark.parametrize(
    "mode", ["default", "all-features", "external", "external-hook"]
)
@pytest.mark.parametrize("version", VALIDATE_VERSIONS)
def test_rendered_objects_are_valid_kubernetes(helm, k8s, mode, version):
    utils = _kubernetes_validate()
    if utils is None:
        k8s.missing_tool("kubernetes-validate is not installed (pip: test extra)")
    if version == "latest":
        version = utils.latest_version()
    rendered = helm.render_mode(mode)
    assert rendered, "nothing rendered"
    problems = []
    for obj in rendered:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        crd_problems = _crd_problems(obj)
        if crd_problems is not None:
            problems += [f"{where}: {problem}" for problem in crd_problems]
            continue
        try:
            utils.validate(obj, version, strict=True)
        except utils.SchemaNotFoundError as ex:
            problems.append(f"{where}: {ex.message}")
        except utils.ValidationError as ex:
            path = ".".join(str(p) for p in ex.path)
            problems.append(f"{where}: {path}: {ex.message}")
    assert not problems, f"Kubernetes {version}, {mode}:\n" + "\n".join(problems)


def test_crd_allow_list_is_exercised_and_strict(helm, k8s):
    """Each allow-listed kind is rendered, is unknown to kubernetes-validate (else
    its real schema should be used), and our schema rejects a misspelt field."""
    utils = _kubernetes_validate()
    if utils is None:
        k8s.missing_tool("kubernetes-validate is not installed (pip: test extra)")
    rendered = helm.render_mode("all-features")
    for key in _crd_validators():
        api_version, kind = key.rsplit("/", 1)
        objs = [
            o for o in rendered if (o["apiVersion"], o["kind"]) == (api_version, kind)
        ]
        assert objs, f"all-features renders no {key}: drop it from {CRD_SCHEMAS.name}"
        with pytest.raises(utils.SchemaNotFoundError):
            utils.validate(objs[0], utils.latest_version(), strict=True)
        assert _crd_problems(objs[0]) == []
        for field, bad_value in _TYPOS[kind]:
            typo = json.loads(json.dumps(objs[0]))
            *parents, leaf = field
            node = typo["spec"]
            for part in parents:
                node = node[part]
            node[leaf + "x"] = node.pop(leaf)
            assert any(leaf + "x" in p for p in _crd_problems(typo)), (key, field)
            typo = json.loads(json.dumps(objs[0]))
            node = typo["spec"]
            for part in parents:
                node = node[part]
            node[leaf] = bad_value
            assert _crd_problems(typo), f"{key}: {field} = {bad_value!r} passed"


# Per kind: (path under spec of a field to misspell, a wrong value for it).
_TYPOS = {
    "ServiceMonitor": [(("endpoints", 0, "interval"), "30 seconds")],
    "PodMonitor": [(("podMetricsEndpoints", 0, "interval"), "30 seconds")],
    "ScaledObject": [
        (("triggers", 0, "metadata", "queueName"), ""),
        (("triggers", 0, "metadata", "mode"), "QueueLenght"),
        (("advanced", "horizontalPodAutoscalerConfig"), {"behaviour": {}}),
    ],
    "HTTPRoute": [
        (("rules", 0, "backendRefs", 0, "port"), "http"),
        (("parentRefs", 0, "sectionName"), 443),
    ],
}


def test_subcharts_render_valid_on_their_own(helm, k8s):
    utils = _kubernetes_validate()
    if utils is None:
        k8s.missing_tool("kubernetes-validate is not installed (pip: test extra)")
    for name, chart in k8s.subcharts.items():
        for obj in helm.render(chart=chart):
            utils.validate(obj, "1.30.0", strict=True)
        assert helm.template_text(chart=chart) == helm.template_text(chart=chart), name


def test_templates_use_no_lookup_random_or_time(k8s):
    offenders = []
    for chart in _all_charts(k8s):
        for path in sorted((chart / "templates").rglob("*")):
            if path.is_dir():
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                for action in re.findall(r"\{\{(.*?)\}\}", line):
                    if FORBIDDEN_FUNCTIONS.search(action):
                        offenders.append(f"{path.relative_to(k8s.root)}:{lineno}")
    assert not offenders, "lookup/random/time functions in templates: " + ", ".join(
        offenders
    )


def test_templates_set_no_namespace(helm, k8s):
    for mode in k8s.modes:
        for obj in helm.render_mode(mode):
            assert "namespace" not in obj["metadata"], obj["metadata"]["name"]


def test_templates_are_named_component_kind(k8s):
    for chart in _all_charts(k8s):
        for path in (chart / "templates").rglob("*.yaml"):
            assert re.fullmatch(r"[a-z0-9]+-[a-z0-9-]+\.yaml", path.name), path


def test_no_remote_chart_dependencies_and_nothing_from_bitnami(k8s):
    import yaml

    for chart in _all_charts(k8s):
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        assert meta["apiVersion"] == "v2"
        for dep in meta.get("dependencies") or []:
            assert not dep.get("repository"), f"{chart.name}: remote {dep}"
            assert (chart / "charts" / dep["name"] / "Chart.yaml").exists()
        for path in chart.rglob("*"):
            if path.is_file() and path.suffix in (".yaml", ".tpl", ".json"):
                assert "bitnami" not in path.read_text().lower(), path


def _notes(helm, k8s, tmp_path, *sets: str) -> str:
    """NOTES.txt as `helm install` prints it (helm template skips NOTES)."""
    import shutil

    import yaml

    chart = tmp_path / "chart"
    shutil.copytree(k8s.chart, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n'
    )
    text = helm.run(
        "template",
        k8s.release,
        str(chart),
        "--namespace",
        k8s.namespace,
        "--show-only",
        "templates/zz-notes.yaml",
        *[arg for item in sets for arg in ("--set", item)],
    ).stdout
    return yaml.safe_load(text)["data"]["notes"]


def test_notes_show_the_ingress_url_or_a_port_forward(helm, k8s, tmp_path):
    with_ingress = _notes(helm, k8s, tmp_path / "a")
    assert "http://twitter.local/" in with_ingress
    assert "port-forward" not in with_ingress
    assert "outlive" in with_ingress or "keeps them" in with_ingress

    without = _notes(helm, k8s, tmp_path / "b", "ingress.enabled=false")
    assert "kubectl --namespace twitter port-forward svc/twitter-api 8000:80" in without

    tls = _notes(helm, k8s, tmp_path / "c", "ingress.tls.enabled=true")
    assert "https://twitter.local/" in tls


def test_every_value_is_documented(k8s):
    """Each value (or a block around it) has a `# path.to.key -- ...` comment."""
    import yaml

    for chart in _all_charts(k8s):
        text = (chart / "values.yaml").read_text()
        documented = set(re.findall(r"#\s*([A-Za-z0-9_.]+)\s+--", text))
        missing = []

        def walk(node, prefix, documented=documented, missing=missing):
            for key, value in node.items():
                path = f"{prefix}{key}"
                if isinstance(value, dict) and value:
                    walk(value, path + ".")
                    continue
                parts = path.split(".")
                known = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                if not any(p in documented for p in known):
                    missing.append(path)

        walk(yaml.safe_load(text), "")
        assert not missing, f"{chart.name}: undocumented values {missing}"
