"""helm test: signup -> login -> tweet -> home timeline, through the API Service.

The tweet reaches the author's home timeline through the outbox relay and a
Dramatiq fan-out, so a pass also shows that the workers, RabbitMQ and Redis work.
"""

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

API_URL = os.environ["API_URL"]
TIMEOUT_S = float(os.environ.get("TIMEOUT_S", "60"))


class Failed(Exception):
    pass


def call(method: str, path: str, body=None, token: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API_URL + path, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as ex:
        return ex.code, ex.read().decode(errors="replace")


def expect(step: str, status: int, payload, allowed=(200, 201)):
    if status not in allowed:
        raise Failed(f"{step}: HTTP {status}: {payload}")
    print(f"ok {step} ({status})")
    return payload


def main() -> None:
    username = "ht" + secrets.token_hex(5)
    password = secrets.token_urlsafe(18)
    marker = f"helm test {secrets.token_hex(8)}"

    expect(
        "signup",
        *call(
            "POST",
            "/auth/signup",
            {
                "username": username,
                "email": f"{username}@example.com",
                "password": password,
            },
        ),
    )
    login = expect(
        "login",
        *call("POST", "/auth/login", {"username": username, "password": password}),
    )
    token = login["access_token"]
    expect(
        "tweet",
        *call("POST", "/tweet/create", {"tweet_content": marker}, token),
        allowed=(201,),
    )

    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status, page = call("GET", "/timeline/home", token=token)
        expect_ok = status == 200 and isinstance(page, dict)
        if expect_ok and any(marker in json.dumps(item) for item in page["data"]):
            print("ok home timeline shows the tweet")
            return
        if time.monotonic() > deadline:
            raise Failed(f"home timeline lacks the tweet after {TIMEOUT_S}s: {page}")
        time.sleep(2)


if __name__ == "__main__":
    try:
        main()
    except Failed as ex:
        print(f"FAIL {ex}")
        sys.exit(1)
