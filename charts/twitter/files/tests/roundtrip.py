"""helm test: two users, a follow, a tweet, the follower's home timeline.

The author's own timeline is written inside the request; the follower's is
written by a Dramatiq fan-out job after the outbox relay published it. So the
tweet showing up on the follower's home timeline shows that the API, Postgres,
the outbox relay, RabbitMQ, the workers and Redis all work together. Both users
are deleted afterwards, whatever happened.
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


def new_user(role: str, created: list) -> str:
    """Sign up and log in a throwaway user; returns its access token."""
    username = "ht" + secrets.token_hex(5)
    password = secrets.token_urlsafe(18)
    body = {"username": username, "email": f"{username}@example.com"}
    expect(
        f"signup {role}", *call("POST", "/auth/signup", {**body, "password": password})
    )
    login = expect(
        f"login {role}",
        *call("POST", "/auth/login", {"username": username, "password": password}),
    )
    created.append((role, username, login["access_token"]))
    print(f"user {role} {username}")
    return login["access_token"]


def run(created: list) -> None:
    author = new_user("author", created)
    follower = new_user("follower", created)
    author_name = created[0][1]
    expect(
        "follow",
        *call("POST", f"/user/follow?username={author_name}", token=follower),
    )
    marker = f"helm test {secrets.token_hex(8)}"
    expect(
        "tweet",
        *call("POST", "/tweet/create", {"tweet_content": marker}, author),
        allowed=(201,),
    )
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status, page = call("GET", "/timeline/home", token=follower)
        page_ok = status == 200 and isinstance(page, dict)
        if page_ok and any(marker in json.dumps(item) for item in page["data"]):
            print("ok the follower's home timeline shows the tweet (fan-out)")
            return
        if time.monotonic() > deadline:
            raise Failed(
                f"the follower's home timeline lacks the tweet after {TIMEOUT_S}s: "
                f"{page} (are the workers running and the broker reachable?)"
            )
        time.sleep(1)


def clean_up(created: list) -> bool:
    ok = True
    for role, username, token in created:
        status, payload = call("DELETE", "/user", token=token)
        if status == 204:
            print(f"ok deleted {role} {username}")
        else:
            print(f"FAIL deleting {role} {username}: HTTP {status}: {payload}")
            ok = False
    return ok


def main() -> int:
    created: list = []
    try:
        run(created)
        passed = True
    except Failed as ex:
        print(f"FAIL {ex}")
        passed = False
    return 0 if clean_up(created) and passed else 1


if __name__ == "__main__":
    sys.exit(main())
