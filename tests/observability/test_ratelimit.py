"""Rate limits against real Redis, through two app instances where it matters."""

from __future__ import annotations

import dataclasses
import time

import pytest
from falcon import testing

from tests.factories import auth_header, signup, user_with_token

UNTRUSTED = "203.0.113.7"
ANON_ROUTE = "/user/data/nobody"  # 404, but a limited response all the same


def statuses(responses) -> list[int]:
    return [r.status_code for r in responses]


@pytest.mark.parametrize(
    "strategy", ["fixed-window", "moving-window", "sliding-window-counter"]
)
def test_limit_trips_at_the_configured_count_across_two_apps(limited, strategy):
    # Given two API instances sharing Redis, 4 anonymous requests per minute
    a = limited(rate_limit_anonymous="4 per minute", rate_limit_strategy=strategy)
    b = limited(rate_limit_anonymous="4 per minute", rate_limit_strategy=strategy)
    # When one client alternates between them
    responses = [
        (a if i % 2 == 0 else b).simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED)
        for i in range(6)
    ]
    # Then the fifth request is refused, whichever instance answers it
    assert statuses(responses) == [404, 404, 404, 404, 429, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == [
        "3",
        "2",
        "1",
        "0",
        "0",
        "0",
    ]
    refused = responses[4]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json["code"] == "rate_limited"
    assert refused.json["status"] == 429
    assert refused.json["bucket"] == "anonymous"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_headers_describe_the_policy_and_what_is_left(limited):
    client = limited(rate_limit_anonymous="4 per minute")
    before = time.time()
    r = client.simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED)
    assert r.headers["RateLimit-Policy"] == '"anonymous-60s";q=4;w=60'
    policy, left, reset = r.headers["RateLimit"].split(";")
    assert policy == '"anonymous-60s"' and left == "r=3"
    assert 58 <= int(reset.removeprefix("t=")) <= 60
    assert r.headers["X-RateLimit-Limit"] == "4"
    assert r.headers["X-RateLimit-Remaining"] == "3"
    assert before + 58 <= int(r.headers["X-RateLimit-Reset"]) <= before + 62
    assert "Retry-After" not in r.headers


def test_a_bucket_of_several_tiers_reports_each_and_binds_the_tightest(limited):
    client = limited(rate_limit_writes="2 per minute;5 per hour")
    _, headers = user_with_token(client)
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": "a"}, headers=headers
    )
    assert r.status_code == 201
    assert r.headers["RateLimit-Policy"] == (
        '"writes-60s";q=2;w=60, "writes-3600s";q=5;w=3600'
    )
    assert r.headers["RateLimit"].startswith('"writes-60s";r=1;t=')
    assert '"writes-3600s";r=4;t=' in r.headers["RateLimit"]
    assert r.headers["X-RateLimit-Limit"] == "2"
    client.simulate_post("/tweet/create", json={"tweet_content": "b"}, headers=headers)
    refused = client.simulate_post(
        "/tweet/create", json={"tweet_content": "c"}, headers=headers
    )
    assert refused.status_code == 429
    assert refused.json["bucket"] == "writes"
    assert refused.headers["X-RateLimit-Limit"] == "2"


@pytest.mark.parametrize(
    "strategy", ["fixed-window", "moving-window", "sliding-window-counter"]
)
def test_retry_after_is_honoured(limited, strategy):
    client = limited(rate_limit_anonymous="2 per second", rate_limit_strategy=strategy)
    for _ in range(2):
        assert client.simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED).status_code == 404
    refused = client.simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED)
    assert refused.status_code == 429
    # When the client waits exactly as long as it was told
    time.sleep(int(refused.headers["Retry-After"]))
    # Then it is served again
    assert client.simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED).status_code == 404


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(limited):
    client = limited(rate_limit_anonymous="2 per minute")
    responses = [
        client.simulate_get(
            ANON_ROUTE,
            remote_addr=UNTRUSTED,
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        )
        for i in range(3)
    ]
    assert statuses(responses) == [404, 404, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(limited):
    client = limited(
        rate_limit_anonymous="2 per minute", trusted_proxies=("10.0.0.0/8",)
    )

    def via_proxy(client_ip: str, chain: str = ""):
        forwarded = f"{chain}{client_ip}, 10.1.0.9"  # ingress -> sidecar -> us
        return client.simulate_get(
            ANON_ROUTE, remote_addr="10.2.0.1", headers={"X-Forwarded-For": forwarded}
        )

    # Each client has its own bucket, and what a client prepends is not trusted
    assert statuses(via_proxy("198.51.100.1", "1.1.1.1, ") for _ in range(3)) == [
        404,
        404,
        429,
    ]
    assert via_proxy("198.51.100.2", "1.1.1.1, ").status_code == 404


def test_an_ipv6_client_is_limited_by_its_64_prefix(limited):
    client = limited(rate_limit_anonymous="2 per minute")
    responses = [
        client.simulate_get(ANON_ROUTE, remote_addr=f"2001:db8:1:2::{i}")
        for i in (1, 2, 3)
    ]
    assert statuses(responses) == [404, 404, 429]


def test_reads_are_limited_per_session_and_writes_per_user(limited):
    client = limited(rate_limit_reads="2 per minute", rate_limit_writes="1 per minute")
    _, alice = user_with_token(client, username="alice")
    _, bob = user_with_token(client, username="bob")
    reads = [client.simulate_get("/timeline/home", headers=alice) for _ in range(3)]
    assert statuses(reads) == [200, 200, 429]
    assert reads[2].json["bucket"] == "reads"
    # bob's session has its own read bucket
    assert client.simulate_get("/timeline/home", headers=bob).status_code == 200
    # and alice's writes their own
    follow = client.simulate_post(
        "/user/follow", params={"username": "bob"}, headers=alice
    )
    assert follow.status_code == 200
    assert follow.headers["RateLimit-Policy"] == '"writes-60s";q=1;w=60'
    again = client.simulate_post(
        "/user/unfollow", params={"username": "bob"}, headers=alice
    )
    assert again.status_code == 429 and again.json["bucket"] == "writes"


def test_signup_and_login_share_a_bucket_per_address(limited):
    client = limited(rate_limit_auth="3 per minute")
    user_with_token(client, username="carol")  # signup + login: 2
    r = client.simulate_post(
        "/auth/login", json={"username": "carol", "password": "password123"}
    )
    assert r.status_code == 200
    assert r.headers["RateLimit-Policy"] == '"auth-60s";q=3;w=60'
    r = client.simulate_post(
        "/auth/login", json={"username": "carol", "password": "password123"}
    )
    assert r.status_code == 429 and r.json["bucket"] == "auth"
    other = client.simulate_post(
        "/auth/login",
        json={"username": "carol", "password": "password123"},
        remote_addr=UNTRUSTED,
    )
    assert other.status_code == 200


def login(client, password: str, remote_addr: str = UNTRUSTED):
    return client.simulate_post(
        "/auth/login",
        json={"username": "dave", "password": password},
        remote_addr=remote_addr,
    )


def test_failed_logins_back_off_longer_and_longer(limited):
    # Given tiers of 2 failures per second, then 3 per hour
    client = limited(rate_limit_login_failures="2 per second;3 per hour")
    user_with_token(client, username="dave")
    # When a guesser fails twice
    assert statuses([login(client, "wrong-1"), login(client, "wrong-2")]) == [401, 401]
    # Then even the right password is refused, briefly
    refused = login(client, "password123")
    assert refused.status_code == 429 and refused.json["bucket"] == "login_failures"
    assert int(refused.headers["Retry-After"]) <= 2
    # and from another address the owner still gets in
    assert login(client, "password123", remote_addr="198.51.100.50").status_code == 200
    # When the guesser waits and fails once more, the next tier holds for an hour
    time.sleep(int(refused.headers["Retry-After"]))
    assert login(client, "wrong-3").status_code == 401
    refused = login(client, "password123")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 3000


def test_a_successful_login_forgets_earlier_failures(limited):
    client = limited(rate_limit_login_failures="2 per minute")
    user_with_token(client, username="dave")
    assert login(client, "wrong").status_code == 401
    assert login(client, "password123").status_code == 200
    # Without the reset this would be the second failure, and then a 429
    assert login(client, "wrong").status_code == 401
    assert login(client, "wrong").status_code == 401
    assert login(client, "password123").status_code == 429


def test_operations_routes_are_never_limited(limited):
    client = limited(rate_limit_anonymous="1 per minute")
    for _ in range(3):
        r = client.simulate_get("/healthz", remote_addr=UNTRUSTED)
        assert r.status_code == 200 and "RateLimit" not in r.headers


def test_limits_switched_off_by_the_setting_send_no_headers(client):
    _, headers = user_with_token(client)
    r = client.simulate_get("/timeline/home", headers=headers)
    assert r.status_code == 200
    assert "RateLimit-Policy" not in r.headers and "X-RateLimit-Limit" not in r.headers


def test_requests_pass_at_once_when_redis_is_away(deps, clean):
    # Given an app whose Redis (the limiter's counters too) refuses connections
    from api.app import create_app
    from core.redis_client import make_redis

    settings = deps.settings.replace(
        rate_limits_enabled=True, redis_url="redis://127.0.0.1:1/0", redis_mode="single"
    )
    broken = dataclasses.replace(deps, settings=settings, redis=make_redis(settings))
    app = create_app(settings, broken)
    # Then routes that need no Redis still answer, unlimited, without waiting
    started = time.monotonic()
    r = testing.TestClient(app).simulate_get("/openapi.json")
    assert r.status_code == 200 and "RateLimit" not in r.headers
    assert time.monotonic() - started < 1


def test_a_request_cannot_switch_limits_off(limited):
    client = limited(rate_limit_anonymous="1 per minute")
    sneaky = {"X-RateLimit-Bypass": "1", "X-Forwarded-For": "127.0.0.1"}
    client.simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED, headers=sneaky)
    r = client.simulate_get(
        ANON_ROUTE, remote_addr=UNTRUSTED, headers={**sneaky, **auth_header("x")}
    )
    # An invalid token is a 401 before any bucket; without one, the 429 holds
    assert r.status_code == 401
    r = client.simulate_get(ANON_ROUTE, remote_addr=UNTRUSTED, headers=sneaky)
    assert r.status_code == 429


@pytest.fixture
def password_checks(deps, monkeypatch):
    """How many times a password reached argon2 (thread-safe list)."""
    checked = []
    cls = type(deps.passwords)
    real = cls.verify
    monkeypatch.setattr(
        cls, "verify", lambda self, *a: checked.append(1) or real(self, *a)
    )
    return checked


def test_parallel_wrong_logins_reach_the_password_check_only_up_to_the_limit(
    limited, password_checks
):
    from concurrent.futures import ThreadPoolExecutor

    # Given 5 failures a minute per account and address
    client = limited(rate_limit_login_failures="5 per minute")
    signup(client, username="dave")
    password_checks.clear()
    # When 16 wrong logins arrive at once
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: login(client, f"wrong-{i}"), range(16)))
    # Then only 5 were checked; the rest were refused before argon2
    assert len(password_checks) == 5
    assert sorted(statuses(answers)) == [401] * 5 + [429] * 11


def test_guesses_from_many_addresses_meet_an_account_wide_limit(
    limited, password_checks
):
    # Given dave, who logs in from his usual address, and 5 failures a minute
    # per address (so 20 a minute per account)
    client = limited(rate_limit_login_failures="5 per minute")
    user_with_token(client, username="dave")
    home = "127.0.0.1"
    password_checks.clear()
    # When 10 addresses guess 5 times each
    answers = [
        login(client, f"guess-{n}", remote_addr=f"198.51.100.{a}")
        for a in range(10)
        for n in range(5)
    ]
    # Then 19 guesses reached the password check, not 50 (20 attempts a
    # minute at the account, dave's own login the first)
    assert len(password_checks) == 19
    assert statuses(answers).count(401) == 19
    refused = [r for r in answers if r.status_code == 429]
    assert {r.json["bucket"] for r in refused} == {"login_account"}
    # and a new address is refused too, even with the right password
    assert login(client, "password123", remote_addr="192.0.2.1").status_code == 429
    # but dave, from the address he logs in from, is not locked out
    assert login(client, "password123", remote_addr=home).status_code == 200


def test_a_wrong_current_password_counts_as_a_failed_login(limited):
    # Given 2 failures a minute per account and address
    client = limited(rate_limit_login_failures="2 per minute")
    _, headers = user_with_token(client, username="dave")

    def change(current: str):
        return client.simulate_put(
            "/user",
            headers=headers,
            json={"password": "brand-new-pass", "current_password": current},
        )

    # When a holder of dave's access token guesses his current password
    assert statuses([change("guess-1"), change("guess-2")]) == [403, 403]
    # Then the third guess is refused before any check, as a login would be
    third = change("password123")
    assert third.status_code == 429 and third.json["bucket"] == "login_failures"
    assert login(client, "password123", remote_addr="127.0.0.1").status_code == 429
    # while dave elsewhere still gets in
    assert login(client, "password123", remote_addr="192.0.2.1").status_code == 200
