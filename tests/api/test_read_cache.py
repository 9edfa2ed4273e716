"""Timeline pages served from the Redis read cache look exactly like Postgres says.

Random likes, retweets, renames, deletes, follows and account deletions run
through the API; after every step some reader's pages are compared, tweet by
tweet and field by field, with the tweet's own page (``GET /tweet/id/{id}``,
always hydrated from Postgres) for the same viewer, and the home page's ids with
the pull query over Postgres once the workers are done. Fields are compared
without waiting for anything: the cache must be right on the very next request.
"""

from __future__ import annotations

import random

import pytest

from core import metrics
from core.db import database
from tests.factories import user_with_token

USERS = 6


def _oracle_home(user_id: int, limit: int) -> list[str]:
    rows = database.execute_sql(
        "SELECT t.id FROM tweets t WHERE t.author_id = %s OR t.author_id IN"
        " (SELECT followee_id FROM follows WHERE follower_id = %s)"
        " ORDER BY t.id DESC LIMIT %s",
        (user_id, user_id, limit),
    ).fetchall()
    database.close()
    return [str(r[0]) for r in rows]


class World:
    def __init__(self, client, rng: random.Random):
        self.client = client
        self.rng = rng
        self.users = []  # [user dict, headers, alive]
        for k in range(USERS):
            user, headers = user_with_token(client, username=f"u{k}")
            self.users.append([user, headers, True])
        self.tweets: list[str] = []

    def alive(self):
        return [u for u in self.users if u[2]]

    def some(self):
        return self.rng.choice(self.alive())

    def step(self) -> str:
        user, h, _ = self.some()
        c, rng = self.client, self.rng
        op = rng.choice(
            ["post"] * 4
            + ["like", "dislike", "retweet", "unretweet", "follow", "unfollow"] * 2
            + ["rename", "delete"]
            + (["drop_user"] if len(self.alive()) > 3 else [])
        )
        tweet = rng.choice(self.tweets) if self.tweets else None
        other = self.some()[0]["username"]
        if op == "post" or tweet is None:
            r = c.simulate_post(
                "/tweet/create", json={"tweet_content": f"t{rng.random()}"}, headers=h
            )
            self.tweets.append(r.json["id"])
        elif op in ("like", "dislike", "retweet"):
            r = c.simulate_post(f"/tweet/id/{tweet}/{op}", headers=h)
            if op == "retweet" and r.status_code == 201:
                self.tweets.append(r.json["id"])
        elif op == "unretweet":
            c.simulate_delete(f"/tweet/id/{tweet}/retweet", headers=h)
        elif op in ("follow", "unfollow"):
            c.simulate_post(f"/user/{op}", params={"username": other}, headers=h)
        elif op == "rename":
            new = f"{user['username'].split('_')[0]}_{rng.randrange(10**6)}"
            r = c.simulate_patch("/user/", json={"username": new}, headers=h)
            if r.status_code == 200:
                user["username"] = new
        elif op == "delete":
            mine = c.simulate_get(
                "/timeline/user", params={"username": user["username"]}, headers=h
            ).json["data"]
            if mine:
                c.simulate_delete(f"/tweet/id/{mine[0]['id']}/delete", headers=h)
        elif op == "drop_user":
            assert c.simulate_delete("/user/", headers=h).status_code == 204
            next(u for u in self.users if u[0] is user)[2] = False
        return op

    def check(self, drain) -> int:
        """Compare one reader's home and one user timeline; returns tweets seen."""
        user, h, _ = self.some()
        shown = self._home(h)
        owner = self.some()[0]["username"]
        for headers in (h, {}):
            other = self.client.simulate_get(
                "/timeline/user", params={"username": owner}, headers=headers
            )
            assert other.status_code == 200, other.text
            for tweet in other.json["data"]:
                self._same_as_own_page(tweet, headers)
        for tweet in shown:
            self._same_as_own_page(tweet, h)
        drain()  # the ids once the fan-out is done
        assert [t["id"] for t in self._home(h)] == _oracle_home(int(user["id"]), 15)
        return len(shown)

    def _home(self, headers) -> list[dict]:
        page = self.client.simulate_get(
            "/timeline/home", params={"limit": 15}, headers=headers
        )
        assert page.status_code == 200, page.text
        return page.json["data"]

    def _same_as_own_page(self, tweet: dict, headers: dict) -> None:
        own = self.client.simulate_get(f"/tweet/id/{tweet['id']}", headers=headers)
        assert own.status_code == 200, f"shown but gone: {tweet}"
        assert tweet == own.json


@pytest.mark.parametrize("seed", [1, 2])
def test_cached_pages_match_postgres_after_every_step(client, drain, seed):
    world = World(client, random.Random(seed))
    for _ in range(8):
        world.step()
    hits_before = _cache_pages()
    seen = 0
    for _ in range(120):
        world.step()
        seen += world.check(drain)
    assert seen > 200
    # the Redis-only path served many of the 720 pages (the rest: after changes)
    assert _cache_pages() - hits_before > 200


def test_a_like_shows_on_the_next_timeline_read(client):
    alice, a_h = user_with_token(client, username="alice")
    _, b_h = user_with_token(client, username="bob")
    tweet = client.simulate_post(
        "/tweet/create", json={"tweet_content": "like me"}, headers=a_h
    ).json["id"]
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    first = client.simulate_get("/timeline/home", headers=b_h).json["data"][0]
    assert (first["like_count"], first["liked"]) == (0, False)
    client.simulate_post(f"/tweet/id/{tweet}/like", headers=b_h)
    again = client.simulate_get("/timeline/home", headers=b_h).json["data"][0]
    assert (again["like_count"], again["liked"]) == (1, True)
    client.simulate_patch("/user/", json={"username": "alice2"}, headers=a_h)
    renamed = client.simulate_get("/timeline/home", headers=b_h).json["data"][0]
    assert renamed["user_id"] == "alice2"


def test_user_timelines_by_name_follow_renames_and_deletions(client):
    _, a_h = user_with_token(client, username="alice")
    client.simulate_post("/tweet/create", json={"tweet_content": "x"}, headers=a_h)

    def status(name):
        params = {"username": name}
        return client.simulate_get("/timeline/user", params=params).status_code

    assert [status("alice"), status("ALICE")] == [200, 200]  # warm by name
    client.simulate_patch("/user/", json={"username": "alicia"}, headers=a_h)
    assert [status("alice"), status("alicia")] == [404, 200]
    client.simulate_delete("/user/", headers=a_h)
    assert status("alicia") == 404


def test_a_late_push_from_an_unfollowed_author_stays_hidden(client, deps):
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    tweet = client.simulate_post(
        "/tweet/create", json={"tweet_content": "soon unfollowed"}, headers=a_h
    ).json["id"]
    own = client.simulate_post(
        "/tweet/create", json={"tweet_content": "bob's own"}, headers=b_h
    ).json["id"]
    for _ in range(2):  # the second read is rendered by Redis alone
        shown = client.simulate_get("/timeline/home", headers=b_h).json["data"]
        assert [t["id"] for t in shown] == [own, tweet]
    client.simulate_post("/user/unfollow", params={"username": "alice"}, headers=b_h)
    # a fan-out job that read the follower list before the unfollow lands late
    store = deps.timelines.store
    store.push([store.home_key(int(bob["id"]))], [(int(tweet), int(alice["id"]))])
    for _ in range(2):
        shown = client.simulate_get("/timeline/home", headers=b_h).json["data"]
        assert [t["id"] for t in shown] == [own]


def test_a_new_tweet_is_read_from_the_cache_right_away(client, drain):
    _, a_h = user_with_token(client, username="alice")
    for n in range(3):
        client.simulate_post(
            "/tweet/create", json={"tweet_content": f"{n}"}, headers=a_h
        )
    client.simulate_get("/timeline/home", headers=a_h)  # rebuilds the home key
    drain()
    client.simulate_get("/timeline/home", headers=a_h)  # warms the rest
    new = client.simulate_post(
        "/tweet/create", json={"tweet_content": "fresh"}, headers=a_h
    ).json
    hits = _cache_pages()
    page = client.simulate_get("/timeline/home", headers=a_h).json["data"]
    assert page[0] == new  # the tweet as its author was shown it
    assert _cache_pages() == hits + 1  # and no long path


def _cache_pages() -> float:
    """Pages the page script rendered in this process so far."""
    return metrics.CACHE_PAGES._value.get()
