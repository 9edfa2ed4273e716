"""Counters equal the rows they count, also under concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from core import db
from tests.factories import auth_header, login, signup


def accounts(client, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        user = signup(client)
        out.append(auth_header(login(client, user["username"])["access_token"]))
    return out


def hammer(calls) -> list[int]:
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(lambda call: call().status_code, calls))


def test_concurrent_follows_likes_and_retweets_keep_exact_counts(client):
    # Given a tweet and 16 fans
    signup(client, username="star")
    star_h = auth_header(login(client, "star")["access_token"])
    fans = accounts(client, 16)
    tweet = client.simulate_post(
        "/tweet/create", json={"tweet_content": "hot"}, headers=star_h
    ).json["id"]
    calls = []
    for h in fans:
        for _ in range(3):  # repeated on purpose: idempotent writes
            calls += [
                lambda h=h: client.simulate_post(
                    "/user/follow", params={"username": "star"}, headers=h
                ),
                lambda h=h: client.simulate_post(f"/tweet/id/{tweet}/like", headers=h),
                lambda h=h: client.simulate_post(
                    f"/tweet/id/{tweet}/retweet", headers=h
                ),
            ]
    # When they all follow, like and retweet at once, three times
    statuses = hammer(calls)
    # Then every count is exact
    assert set(statuses) <= {200, 201}
    got = client.simulate_get(f"/tweet/id/{tweet}").json
    assert got["like_count"] == 16 and got["retweet_count"] == 16
    assert client.simulate_get("/user/data/star").json["follower_count"] == 16
    # When half of them take it all back, concurrently
    undo = []
    for h in fans[:8]:
        undo += [
            lambda h=h: client.simulate_post(
                "/user/unfollow", params={"username": "star"}, headers=h
            ),
            lambda h=h: client.simulate_post(f"/tweet/id/{tweet}/dislike", headers=h),
            lambda h=h: client.simulate_delete(f"/tweet/id/{tweet}/retweet", headers=h),
        ] * 2
    # Then the counts, and the rows they count, are exact again
    assert set(hammer(undo)) == {200}
    got = client.simulate_get(f"/tweet/id/{tweet}").json
    assert got["like_count"] == 8 and got["retweet_count"] == 8
    assert client.simulate_get("/user/data/star").json["follower_count"] == 8
    rows = db.fetchone(
        "SELECT (SELECT count(*) FROM likes WHERE tweet_id = %s),"
        " (SELECT count(*) FROM tweets WHERE retweet_of_id = %s)",
        (int(tweet),) * 2,
    )
    db.database.close()
    assert rows == (8, 8)


def test_crossing_follows_do_not_deadlock(client):
    # Given 8 users
    users = accounts(client, 8)
    names = [client.simulate_get("/user", headers=h).json["username"] for h in users]
    calls = [
        (
            lambda h=h, n=n: client.simulate_post(
                "/user/follow", params={"username": n}, headers=h
            )
        )
        for h in users
        for n in names
    ]
    # When each follows every other one (and themselves), twice, at once
    statuses = hammer(calls * 2)
    # Then no deadlock: only the self-follows fail, and counts are exact
    assert statuses.count(422) == 2 * len(users)  # following oneself
    assert set(statuses) == {200, 422}
    for n in names:
        profile = client.simulate_get(f"/user/data/{n}").json
        assert profile["follower_count"] == profile["following_count"] == 7
