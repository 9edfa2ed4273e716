"""Accounts, profiles and the social graph as a client sees them."""

from __future__ import annotations

from core import db
from tests.factories import signup, user_with_token


def test_signup_returns_the_user_with_string_ids_and_location(client):
    # When alice signs up
    r = client.simulate_post(
        "/auth/signup",
        json={
            "username": "Alice_1",
            "email": "alice@example.com",
            "password": "longenough",
        },
    )
    # Then she gets her user, ids as strings, with its URL, no secret
    assert r.status_code == 201
    assert r.headers["location"] == "/user/data/Alice_1"
    assert isinstance(r.json["id"], str) and int(r.json["id"]) > 2**53
    assert r.json["email"] == "alice@example.com"
    assert "password" not in r.text and "argon2" not in r.text


def test_usernames_and_emails_are_unique_ignoring_case(client):
    # Given alice
    signup(client, username="alice", email="alice@example.com")
    # When another signs up as ALICE, or with her email in capitals
    r = client.simulate_post(
        "/auth/signup",
        json={
            "username": "ALICE",
            "email": "other@example.com",
            "password": "longenough",
        },
    )
    # Then both are taken
    assert r.status_code == 409 and r.json["code"] == "username_taken"
    r = client.simulate_post(
        "/auth/signup",
        json={
            "username": "alice2",
            "email": "Alice@Example.COM",
            "password": "longenough",
        },
    )
    assert r.status_code == 409 and r.json["code"] == "email_taken"


def test_profile_lookup_ignores_case_and_hides_email_from_others(client):
    alice, a_h = user_with_token(client, username="alice")
    assert "email" not in client.simulate_get("/user/data/ALICE").json
    assert client.simulate_get("/user/data/alice", headers=a_h).json["email"]
    assert client.simulate_get("/user/data/nobody").status_code == 404


def test_profile_edits_are_validated_and_conflicts_reported(client):
    # Given a user, and another name taken
    signup(client, username="taken")
    _, h = user_with_token(client, username="me")
    # When the profile is edited, within the rules and past them
    ok = client.simulate_patch(
        "/user", headers=h, json={"display_name": "Me", "bio": "hello"}
    )
    # Then the good edit lands, the others are 422 or 409
    assert ok.status_code == 200 and ok.json["bio"] == "hello"
    assert (
        client.simulate_patch("/user", headers=h, json={"bio": "x" * 161}).status_code
        == 422
    )
    assert (
        client.simulate_patch(
            "/user", headers=h, json={"display_name": "x" * 51}
        ).status_code
        == 422
    )
    r = client.simulate_patch("/user", headers=h, json={"username": "TAKEN"})
    assert r.status_code == 409 and r.json["code"] == "username_taken"


def test_follow_lists_are_newest_first_and_refollow_keeps_its_place(client):
    star, _ = user_with_token(client, username="star")
    # Given five fans who follow the star in turn
    fans = [user_with_token(client, username=f"fan{i}") for i in range(5)]
    for _, h in fans:
        client.simulate_post("/user/follow", params={"username": "star"}, headers=h)
    # When fan0 follows again: idempotent, it keeps its (oldest) place
    again = client.simulate_post(
        "/user/follow", params={"username": "star"}, headers=fans[0][1]
    )
    assert again.status_code == 200 and again.json == {"following": True}
    # Then the followers, walked by cursor, come newest first
    names, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.simulate_get("/user/star/followers", params=params).json
        names += [u["username"] for u in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == ["fan4", "fan3", "fan2", "fan1", "fan0"]
    # and a following list's cursor is no followers cursor
    following = client.simulate_get("/user/fan0/following").json["data"]
    assert [u["username"] for u in following] == ["star"]
    assert (
        client.simulate_get(
            "/user/star/followers",
            params={
                "cursor": client.simulate_get(
                    "/user/fan0/following", params={"limit": 1}
                ).json["next_cursor"]
                or "x"
            },
        ).status_code
        == 400
    )


def test_cursor_of_another_list_is_refused(client):
    # Given a cursor of a's followers
    user_with_token(client, username="a")
    fans = [user_with_token(client) for _ in range(3)]
    for _, h in fans:
        client.simulate_post("/user/follow", params={"username": "a"}, headers=h)
    cursor = client.simulate_get("/user/a/followers", params={"limit": 1}).json[
        "next_cursor"
    ]
    assert cursor
    # When it is used on another user's followers, or altered
    fan_name = client.simulate_get("/user", headers=fans[0][1]).json["username"]
    r = client.simulate_get(f"/user/{fan_name}/followers", params={"cursor": cursor})
    # Then it is refused
    assert r.status_code == 400 and r.json["code"] == "invalid_cursor"
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    r = client.simulate_get("/user/a/followers", params={"cursor": tampered})
    assert r.status_code == 400 and r.json["code"] == "invalid_cursor"


def test_follow_edge_cases(client):
    _, h = user_with_token(client, username="solo")
    r = client.simulate_post("/user/follow", params={"username": "solo"}, headers=h)
    assert r.status_code == 422
    r = client.simulate_post("/user/follow", params={"username": "ghost"}, headers=h)
    assert r.status_code == 404
    r = client.simulate_post("/user/unfollow", params={"username": "ghost"}, headers=h)
    assert r.status_code == 404
    assert (
        client.simulate_post("/user/follow", params={"username": "solo"}).status_code
        == 401
    )


def test_foreign_keys_say_what_happens_on_delete():
    rules = dict(
        db.fetchall(
            "SELECT tc.table_name || '.' || kcu.column_name, rc.delete_rule"
            " FROM information_schema.referential_constraints rc"
            " JOIN information_schema.table_constraints tc"
            "   ON tc.constraint_name = rc.constraint_name"
            " JOIN information_schema.key_column_usage kcu"
            "   ON kcu.constraint_name = rc.constraint_name"
        )
    )
    db.database.close()
    assert rules == {
        "follows.follower_id": "CASCADE",
        "follows.followee_id": "CASCADE",
        "tweets.author_id": "CASCADE",
        "tweets.retweet_of_id": "CASCADE",
        "likes.tweet_id": "CASCADE",
        "likes.user_id": "CASCADE",
        "refresh_tokens.user_id": "CASCADE",
        "idempotency_keys.user_id": "CASCADE",
    }
