"""Zero-downtime JWT key rotation on a running gunicorn API.

The key files change under the running processes exactly as a kubelet updates
mounted Secrets (``..data`` symlink swaps): first the public key Secret, then the
private one with ``previous.pem`` and ``active-after``. Clients keep calling
throughout; no token may be refused, neither by the API nor by a verifier whose
copy of the public keys arrives later (another pod on a slower kubelet), and the
API must end up signing with the new key without a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import jwt
import pytest

from core import keyfiles
from core.settings import Settings
from core.tokens import ACCESS, TokenCodec
from tests.e2e.test_gunicorn import ROOT, Http, free_port
from tests.secret_volume import SecretVolume, keypair

PROPAGATION_S = 3


@pytest.fixture
def rotating_api(services, clean, tmp_path):
    a = keypair()
    private = SecretVolume(tmp_path / "jwt-private")
    public = SecretVolume(tmp_path / "jwt-public")
    private.write({"private.pem": a[1]})
    public.write({f"{a[0]}.pem": a[2]})
    port = free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        METRICS_PORT=str(free_port()),
        WEB_WORKERS="2",
        WEB_THREADS="4",
        JWT_PRIVATE_KEY_PATH=str(private.root / "private.pem"),
        JWT_PUBLIC_KEYS_PATH=str(public.root),
        JWT_KEY_PROPAGATION_S=str(PROPAGATION_S),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    from cli import processes

    proc = subprocess.Popen(
        processes.api_command(None), cwd=ROOT, env=env, start_new_session=True
    )
    http = Http(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http.call("GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("gunicorn did not start")
    yield http, a, private, public
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def test_rotation_under_load_refuses_no_token(rotating_api, tmp_path):
    http, a, private, public = rotating_api
    credentials = {"username": "rot", "password": "correct horse battery"}
    signup = {**credentials, "email": "rot@example.com"}
    assert http.call("POST", "/auth/signup", signup)[0] == 201
    first = http.call("POST", "/auth/login", credentials)[1]
    assert kid(first["access_token"]) == a[0]

    # A verifier elsewhere (another service, a pod on a slower node), whose copy
    # of the public keys gets the new key later than the API does.
    slow_public = SecretVolume(tmp_path / "slow-public")
    slow_public.write({f"{a[0]}.pem": a[2]})
    slow = TokenCodec(
        Settings.from_env(
            {"APP_ENV": "test", "JWT_KEY_PROPAGATION_S": "0", "CURSOR_SECRET": "k" * 40}
        ),
        keys=keyfiles.WatchedKeys(None, slow_public.root),
    )

    refused, issued, stop = [], [], threading.Event()

    def client():
        tokens = [first["access_token"]]
        while not stop.is_set():
            status, body = http.call("POST", "/auth/login", credentials)
            if status != 200:
                refused.append(("login", status, body))
                continue
            token = body["access_token"]
            issued.append((time.monotonic(), token))
            tokens.append(token)
            for t in (tokens[0], token):
                status, body = http.call("GET", "/user", token=t)
                if status != 200:
                    refused.append(("api", kid(t), status, body))
                try:
                    slow.verify(t, ACCESS)
                except Exception as ex:  # noqa: BLE001 - recorded, asserted below
                    refused.append(("slow verifier", kid(t), repr(ex)))
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        # When keys rotate as `python -m keys rotate` does: public Secret first,
        b = keypair()
        public.write({f"{a[0]}.pem": a[2], f"{b[0]}.pem": b[2]})
        time.sleep(0.5)
        # then the private one, activating PROPAGATION_S seconds later,
        private.write(
            {
                "private.pem": b[1],
                "previous.pem": a[1],
                "active-after": str(int(time.time()) + PROPAGATION_S).encode(),
            }
        )
        # while the slow verifier gets the new public key before that (its own
        # file check included: the propagation delay must cover both).
        time.sleep(0.5)
        slow_public.write({f"{a[0]}.pem": a[2], f"{b[0]}.pem": b[2]})
        # Then the JWKS serves both keys during the overlap (once the API's
        # file check, every KEY_CHECK_S, has seen the new public key)...
        deadline = time.monotonic() + 3 * keyfiles.KEY_CHECK_S + 2
        while True:
            keys = http.call("GET", "/.well-known/jwks.json")[1]["keys"]
            jwks = {k["kid"] for k in keys}
            if jwks == {a[0], b[0]} or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert jwks == {a[0], b[0]}
        # ...and within the propagation delay (+ the files' check interval) the
        # API signs with the new key, without a restart.
        deadline = time.monotonic() + PROPAGATION_S + 3 * keyfiles.KEY_CHECK_S + 5
        while time.monotonic() < deadline:
            if issued and kid(issued[-1][1]) == b[0]:
                break
            time.sleep(0.2)
        time.sleep(2)  # keep calling with old and new tokens for a while
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert not refused, refused[:5]
    kids = [kid(token) for _, token in issued]
    assert kids[0] == a[0] and kids[-1] == b[0], "never switched to the new key"
    # Once switched, every worker process signs with the new key.
    switched = kids.index(b[0])
    assert len(kids) - switched > 10
    assert kids[-10:] == [b[0]] * 10
    # Tokens signed with the old key still work after the switch.
    assert http.call("GET", "/user", token=first["access_token"])[0] == 200
