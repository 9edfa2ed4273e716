"""The key CLI against a fake API server, through the real `kubernetes` client."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

NS = "twitter"
PRIVATE, PUBLIC, GENERATED = "twitter-jwt", "twitter-jwt-public", "twitter-generated"
JWT_ARGS = ["--jwt-private-secret", PRIVATE, "--jwt-public-secret", PUBLIC]


def run(fake, capsys, *args: str) -> tuple[int, str, str]:
    from keys.__main__ import main

    code = main([args[0], "--kubeconfig", fake.kubeconfig, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def ensure(fake, capsys, *extra: str) -> tuple[int, str, str]:
    return run(
        fake,
        capsys,
        "ensure-secret",
        "--namespace",
        NS,
        *JWT_ARGS,
        "--generated-secret",
        GENERATED,
        "--generated-key",
        "cursor-secret",
        "--generated-key",
        "postgres-password",
        "--label",
        "app.kubernetes.io/instance=twitter",
        *extra,
    )


def kid_of_private(fake) -> str:
    from core import keyfiles

    pem = fake.secret_data(NS, PRIVATE)["private.pem"]
    key = serialization.load_pem_private_key(pem, password=None)
    return keyfiles.key_id(key.public_key())


def public_kids(fake) -> set[str]:
    return {name.removesuffix(".pem") for name in fake.secret_data(NS, PUBLIC)}


def test_creates_keys_and_credentials_when_absent(fake_kube, capsys):
    # Given an empty namespace
    # When the Job runs
    code, out, _ = ensure(fake_kube, capsys)
    # Then the keypair and the credentials exist
    assert code == 0, out
    kid = kid_of_private(fake_kube)
    assert f"signing kid {kid}" in out
    assert public_kids(fake_kube) == {kid}
    # ...the public key verifies what the private key signs
    private_pem = fake_kube.secret_data(NS, PRIVATE)["private.pem"]
    private = serialization.load_pem_private_key(private_pem, password=None)
    public = serialization.load_pem_public_key(
        fake_kube.secret_data(NS, PUBLIC)[f"{kid}.pem"]
    )
    signature = private.sign(b"token", padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, b"token", padding.PKCS1v15(), hashes.SHA256())
    # ...the credentials are long random hex strings
    generated = fake_kube.secret_data(NS, GENERATED)
    assert set(generated) == {"cursor-secret", "postgres-password"}
    for value in generated.values():
        assert len(value) == 64 and int(value, 16) >= 0
    meta = fake_kube.secrets[(NS, PRIVATE)]["metadata"]
    assert meta["labels"]["app.kubernetes.io/instance"] == "twitter"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "twitter-keys"
    assert meta["annotations"]["twitter-backend/kid"] == kid


def test_existing_secrets_are_left_alone(fake_kube, capsys):
    # Given a first run
    ensure(fake_kube, capsys)
    before = {k: v["metadata"]["resourceVersion"] for k, v in fake_kube.secrets.items()}
    fake_kube.requests.clear()
    # When the Job runs again (every upgrade)
    code, out, _ = ensure(fake_kube, capsys)
    # Then it only reads
    assert code == 0
    assert "unchanged" in out
    assert fake_kube.verbs_used() == {"get"}
    after = {k: v["metadata"]["resourceVersion"] for k, v in fake_kube.secrets.items()}
    assert after == before


def test_never_replaces_credentials_but_adds_missing_ones(fake_kube, capsys):
    fake_kube.put_secret(NS, GENERATED, {"cursor-secret": b"kept-as-is"})
    code, out, _ = ensure(fake_kube, capsys)
    assert code == 0
    data = fake_kube.secret_data(NS, GENERATED)
    assert data["cursor-secret"] == b"kept-as-is"
    assert len(data["postgres-password"]) == 64
    assert "added postgres-password" in out


def test_restores_a_deleted_public_secret(fake_kube, capsys):
    ensure(fake_kube, capsys)
    kid = kid_of_private(fake_kube)
    del fake_kube.secrets[(NS, PUBLIC)]
    code, out, _ = ensure(fake_kube, capsys)
    assert code == 0
    assert public_kids(fake_kube) == {kid}
    assert "restored public key" in out


def test_rotation_adds_a_new_kid_and_keeps_the_old_public_key(fake_kube, capsys):
    # Given keys from an install
    ensure(fake_kube, capsys)
    old = kid_of_private(fake_kube)
    # When jwt.rotation is raised to 1
    code, out, _ = ensure(fake_kube, capsys, "--rotation", "1")
    # Then the private key is new and both public keys verify
    assert code == 0
    new = kid_of_private(fake_kube)
    assert new != old
    assert public_kids(fake_kube) == {old, new}
    assert f"{old} -> {new}" in out
    # And upgrades that keep rotation=1 do not rotate again
    code, out, _ = ensure(fake_kube, capsys, "--rotation", "1")
    assert kid_of_private(fake_kube) == new
    assert "unchanged" in out


def test_rotate_and_retire_commands(fake_kube, capsys):
    ensure(fake_kube, capsys)
    old = kid_of_private(fake_kube)
    code, out, _ = run(
        fake_kube, capsys, "rotate", "--namespace", NS, "--release", "twitter"
    )
    assert code == 0, out
    new = kid_of_private(fake_kube)
    assert public_kids(fake_kube) == {old, new}
    annotations = fake_kube.secrets[(NS, PRIVATE)]["metadata"]["annotations"]
    assert annotations["twitter-backend/rotation"] == "1"
    # Running pods keep signing with the previous key until every pod has the
    # new public key (core.keyfiles.WatchedKeys reads these two files).
    from core import keyfiles

    data = fake_kube.secret_data(NS, PRIVATE)
    previous = serialization.load_pem_private_key(data["previous.pem"], None)
    assert keyfiles.key_id(previous.public_key()) == old
    assert 0 < int(data["active-after"]) - time.time() <= 120
    # The signing key cannot be retired...
    code, _, err = run(
        fake_kube,
        capsys,
        "retire",
        "--namespace",
        NS,
        "--release",
        "twitter",
        f"--kid={new}",  # a kid may start with "-"
    )
    assert code == 1 and "signing key" in err
    # ...the old one can, once its tokens have expired.
    code, out, _ = run(
        fake_kube,
        capsys,
        "retire",
        "--namespace",
        NS,
        "--release",
        "twitter",
        f"--kid={old}",
    )
    assert code == 0 and old in out
    assert public_kids(fake_kube) == {new}


def test_losing_the_create_race_keeps_the_winners_key(fake_kube, capsys):
    from core import keyfiles

    # Given another Job that creates the private key between our get and create
    winner = keyfiles.generate_private_key()
    winner_kid = keyfiles.key_id(winner.public_key())

    def race(ns, name):
        if name == PRIVATE and (ns, name) not in fake_kube.secrets:
            fake_kube.put_secret(
                ns, name, {"private.pem": keyfiles.private_pem(winner)}
            )

    fake_kube.before_create = race
    code, out, _ = ensure(fake_kube, capsys)
    # Then its key is used and our unused public key is withdrawn
    assert code == 0, out
    assert kid_of_private(fake_kube) == winner_kid
    assert public_kids(fake_kube) == {winner_kid}


def test_rbac_denial_is_reported_with_the_missing_verb(fake_kube, capsys):
    fake_kube.allow(
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "patch"]}]
    )
    code, _, err = ensure(fake_kube, capsys)
    assert code == 1
    assert "forbidden to create secret" in err
    assert "Role must allow 'create'" in err
    assert "cannot create resource" in err  # the API server's own message


def test_other_api_errors_fail_the_job(fake_kube, capsys):
    fake_kube.put_secret(NS, PRIVATE, {"private.pem": b"not a key"})
    from keys.__main__ import main

    with pytest.raises(ValueError):
        main(
            [
                "ensure-secret",
                "--kubeconfig",
                fake_kube.kubeconfig,
                "--namespace",
                NS,
                *JWT_ARGS,
            ]
        )
    capsys.readouterr()


def test_the_rendered_role_allows_exactly_what_the_job_does(
    helm, k8s, fake_kube, capsys
):
    """Run the chart's own Job command under the chart's own Role."""
    from keys.__main__ import main

    used: set[str] = set()
    for mode in ("default", "all-features", "external-hook"):
        rendered = helm.render_mode(mode)
        role = rendered.get("Role", "twitter-keys")
        job = rendered.get("Job", "twitter-keys")
        command = k8s.containers(job)[0]["command"]
        assert command[:3] == ["python", "-m", "keys"]
        args = [a.replace("$(POD_NAMESPACE)", NS) for a in command[3:]]
        fake_kube.secrets.clear()
        fake_kube.allow(role["rules"])
        # fresh install, then an upgrade
        for _ in range(2):
            fake_kube.requests.clear()
            code = main([args[0], "--kubeconfig", fake_kube.kubeconfig, *args[1:]])
            out, err = capsys.readouterr()
            assert code == 0, f"{mode}: {out}{err}"
            used |= fake_kube.verbs_used()
        # a later rotation, as `helm upgrade --set jwt.rotation=N+1` runs it
        if "--rotation" in args:
            at = args.index("--rotation") + 1
            bumped = [*args[:at], str(int(args[at]) + 1), *args[at + 1 :]]
            code = main([bumped[0], "--kubeconfig", fake_kube.kubeconfig, *bumped[1:]])
            out, err = capsys.readouterr()
            assert code == 0 and "rotated" in out, f"{mode}: {out}{err}"
            used |= fake_kube.verbs_used()
    granted = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert used == granted, f"Role grants {granted}, the Job uses {used}"


def test_generate_writes_a_local_dev_keypair(tmp_path, capsys):
    from core import keyfiles
    from core.settings import Settings
    from keys.__main__ import build_parser, main

    defaults = build_parser().parse_args(["generate"])
    assert defaults.private == Settings().jwt_private_key_path
    assert defaults.public_dir == Settings().jwt_public_keys_path
    private, public = tmp_path / "private.pem", tmp_path / "public"
    assert (
        main(["generate", "--private", str(private), "--public-dir", str(public)]) == 0
    )
    key = keyfiles.load_private_key(private)
    assert set(keyfiles.load_public_keys(public)) == {keyfiles.key_id(key.public_key())}
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    # A second run keeps the key.
    before = private.read_bytes()
    assert (
        main(["generate", "--private", str(private), "--public-dir", str(public)]) == 0
    )
    assert private.read_bytes() == before
    assert "keeping it" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    from keys.__main__ import main

    assert main(["rotate", "--jwt-private-secret", "a"]) == 2
    assert main(["ensure-secret", "--generated-key", "x"]) == 2
    assert "usage error" in capsys.readouterr().err


def test_status_objects_round_trip_through_the_client(fake_kube):
    """The fake server speaks the API server's dialect to the real client."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = client.CoreV1Api(
        config.new_client_from_config(config_file=fake_kube.kubeconfig)
    )
    with pytest.raises(ApiException) as missing:
        api.read_namespaced_secret("nope", NS)
    assert missing.value.status == 404
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="s"),
        data={"k": base64.b64encode(b"v").decode()},
    )
    created = api.create_namespaced_secret(NS, body)
    assert created.metadata.resource_version
    with pytest.raises(ApiException) as exists:
        api.create_namespaced_secret(NS, body)
    assert exists.value.status == 409 and "AlreadyExists" in exists.value.body
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"k": None}}
    with pytest.raises(ApiException) as conflict:
        api.patch_namespaced_secret("s", NS, stale)
    assert conflict.value.status == 409 and "Conflict" in conflict.value.body
    created.data = {"k2": base64.b64encode(b"v2").decode()}
    replaced = api.replace_namespaced_secret("s", NS, created)
    assert set(replaced.data) == {"k2"}
    assert [s.metadata.name for s in api.list_namespaced_secret(NS).items] == ["s"]
