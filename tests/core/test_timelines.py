"""The guarantees of timelines.md, each shown on its own."""

from __future__ import annotations

import time

from tests.factories import user_with_token


def post(client, headers, text="x") -> str:
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": text}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json["id"]


def home_ids(client, headers, **params) -> list[str]:
    r = client.simulate_get("/timeline/home", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json["data"]]


def walk(client, path, headers=None, limit=7, **params) -> list[str]:
    ids, cursor = [], None
    while True:
        query = dict(params, limit=limit, **({"cursor": cursor} if cursor else {}))
        page = client.simulate_get(path, params=query, headers=headers).json
        ids += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def test_pages_past_the_cap_come_from_postgres(client, drain, settings):
    # Given more tweets than a timeline keeps in Redis
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    home_ids(client, b_h)  # materialize bob's home before the tweets
    posted = [post(client, a_h, f"n{i}") for i in range(settings.timeline_cap * 2 + 5)]
    drain()
    # Then scrolling reaches the very first tweet, newest first, no gaps
    assert walk(client, "/timeline/home", b_h) == posted[::-1]
    assert walk(client, "/timeline/user", username="alice") == posted[::-1]
    # and the legacy start= offset agrees with the cursor walk
    assert home_ids(client, b_h, start=40, limit=10) == posted[::-1][40:50]


def test_cursor_pages_never_repeat_or_skip_while_tweets_arrive(client, drain):
    alice, a_h = user_with_token(client, username="alice")
    # Given 25 tweets
    before = [post(client, a_h, f"old {i}") for i in range(25)]
    drain()
    # When the home is walked by cursor while new tweets arrive
    seen, cursor = [], None
    while True:
        query = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = client.simulate_get("/timeline/home", params=query, headers=a_h).json
        seen += [t["id"] for t in page["data"]]
        post(client, a_h, "new arrival")  # lands at the head meanwhile
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Then every old tweet was seen once, in order
    assert seen == before[::-1]


def test_follow_backfills_recent_tweets_within_seconds(client, drain, deps):
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    # Given alice's tweets and bob's empty, materialized home
    posted = [post(client, a_h) for _ in range(3)]
    assert home_ids(client, b_h) == []  # bob's home is materialized and empty
    # When he follows her
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    # Then the backfill puts her tweets in his home key
    deadline = time.monotonic() + 5
    store = deps.timelines.store
    while time.monotonic() < deadline:
        timeline = store.read([store.home_key(int(bob["id"]))])[0]
        if [str(e[0]) for e in timeline.entries()] == posted[::-1]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("backfill did not arrive within 5 s")
    assert home_ids(client, b_h) == posted[::-1]


def test_crossing_the_threshold_both_ways_loses_and_duplicates_nothing(
    client, drain, settings
):
    # Given a star just below the threshold, read by a fan with a materialized home
    star, s_h = user_with_token(client, username="star")
    fans = [user_with_token(client) for _ in range(settings.fanout_threshold + 1)]
    fan_headers = [h for _, h in fans]
    for h in fan_headers[:-2]:
        client.simulate_post("/user/follow", params={"username": "star"}, headers=h)
    for h in fan_headers:
        home_ids(client, h)
    early = [post(client, s_h, "pushed")]
    drain()
    # When the star crosses up (pulled from now on), tweets, then crosses down
    client.simulate_post(
        "/user/follow", params={"username": "star"}, headers=fan_headers[-2]
    )
    assert client.simulate_get("/user/data/star").json["follower_count"] == (
        settings.fanout_threshold
    )
    middle = [post(client, s_h, "pulled")]
    drain()
    assert home_ids(client, fan_headers[0]) == (early + middle)[::-1]
    client.simulate_post(
        "/user/unfollow", params={"username": "star"}, headers=fan_headers[-2]
    )
    late = [post(client, s_h, "pushed again")]
    drain()
    # Then every follower sees every tweet exactly once, in order
    expected = (early + middle + late)[::-1]
    for h in fan_headers[:-2]:
        assert home_ids(client, h) == expected
    assert home_ids(client, fan_headers[-1]) == []  # never followed


def test_deleted_account_leaves_every_timeline(client, drain):
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    # Given bob's home with alice's tweet and her retweet of his
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    home_ids(client, b_h)
    own = post(client, a_h, "mine")
    bobs = post(client, b_h, "bob's")
    rt = client.simulate_post(f"/tweet/id/{bobs}/retweet", headers=a_h).json["id"]
    drain()
    assert home_ids(client, b_h) == [rt, bobs, own]
    # When she deletes her account
    assert client.simulate_delete("/user", headers=a_h).status_code == 204
    # Then his home loses both at once, and after the jobs
    assert home_ids(client, b_h) == [bobs]
    drain()
    assert home_ids(client, b_h) == [bobs]
    # and the counts she touched drop
    bob_now = client.simulate_get("/user/data/bob").json
    assert bob_now["follower_count"] == 0 and bob_now["following_count"] == 0
    assert client.simulate_get(f"/tweet/id/{bobs}").json["retweet_count"] == 0
