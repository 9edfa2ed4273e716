"""Redis is a cache: while it is unreachable, reads and writes go on from Postgres.

The API talks to Redis through a TCP proxy that the test cuts (closing every
open connection, as a Redis restart would); the machine's Redis is untouched.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
from falcon import testing

from core import container
from core.db import database
from tests.factories import user_with_token
from tests.support import TcpProxy

pytestmark = pytest.mark.single_redis


@pytest.fixture
def proxied(settings, clean):
    from api.app import create_app

    real = urlsplit(settings.redis_url)
    proxy = TcpProxy(real.port or 6379, real.hostname or "127.0.0.1")
    url = urlunsplit(real._replace(netloc=f"127.0.0.1:{proxy.port}"))
    deps = container.build(settings.replace(redis_url=url, redis_timeout_s=1.0))
    yield proxy, testing.TestClient(create_app(deps.settings, deps))
    proxy.cut()


def _home_oracle(user_id: int) -> list[str]:
    rows = database.execute_sql(
        "SELECT id FROM tweets WHERE author_id = %s OR author_id IN"
        " (SELECT followee_id FROM follows WHERE follower_id = %s)"
        " ORDER BY id DESC LIMIT 20",
        (user_id, user_id),
    ).fetchall()
    database.close()
    return [str(r[0]) for r in rows]


def test_reads_and_writes_go_on_while_redis_is_away(proxied):
    proxy, client = proxied
    _, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    for n in range(3):
        client.simulate_post(
            "/tweet/create", json={"tweet_content": f"t{n}"}, headers=a_h
        )

    def pages():
        home = client.simulate_get("/timeline/home", headers=b_h)
        user = client.simulate_get(
            "/timeline/user", params={"username": "alice"}, headers=b_h
        )
        assert home.status_code == user.status_code == 200, (home.text, user.text)
        return [t["id"] for t in home.json["data"]], user.json["data"]

    warm = pages()
    assert pages() == warm  # the second time from the read cache
    # Given Redis goes away
    proxy.cut()
    # Then pages come from Postgres, with the same content
    assert pages() == warm
    assert warm[0] == _home_oracle(int(bob["id"]))
    # and writes are still accepted (the token check asks Postgres)
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": "during"}, headers=a_h
    )
    assert r.status_code == 201, r.text
    during = pages()
    assert during[0] == _home_oracle(int(bob["id"])) and during[0][0] == r.json["id"]
    # When Redis is back, the API uses it again without a restart
    proxy.restore()
    client.simulate_post("/user/unfollow", params={"username": "alice"}, headers=b_h)
    after = pages()
    assert after[0] == _home_oracle(int(bob["id"])) == []


def test_a_logout_during_a_redis_outage_stays_a_logout(proxied, drain, caplog):
    proxy, client = proxied
    # Given alice's session, used once (her denylist entries are loaded)
    _, a_h = user_with_token(client, username="alice")
    assert client.simulate_get("/timeline/home", headers=a_h).status_code == 200
    # When she logs out while this API process cannot reach Redis
    proxy.cut()
    assert client.simulate_post("/auth/logout", headers=a_h).status_code == 204
    # Then the failed write is logged, and the token is refused meanwhile
    assert any("denylist write" in r.getMessage() for r in caplog.records)
    assert client.simulate_get("/timeline/home", headers=a_h).status_code == 401
    # and once Redis is back (and the catch-up job has run) still refused,
    # although Redis kept the mark that her entries are loaded
    proxy.restore()
    drain()
    for path in ("/timeline/home", "/user"):
        r = client.simulate_get(path, headers=a_h)
        assert r.status_code == 401, (path, r.text)
        assert r.json["code"] == "token_revoked"
