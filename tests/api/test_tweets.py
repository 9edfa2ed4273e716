"""Tweets, replies, likes and retweets as the contract describes them."""

from __future__ import annotations

from tests.factories import user_with_token


def post(client, h, text="hi", **extra):
    return client.simulate_post(
        "/tweet/create", json={"tweet_content": text, **extra}, headers=h
    )


def test_create_returns_the_tweet_with_location(client):
    alice, h = user_with_token(client, username="alice")
    r = post(client, h, "hello")
    assert r.status_code == 201
    assert r.headers["location"] == f"/tweet/id/{r.json['id']}"
    t = r.json
    assert (t["user_id"], t["author_id"], t["tweet_content"]) == (
        "alice",
        alice["id"],
        "hello",
    )
    assert t["reply_to"] is None and t["retweet_of"] is None
    assert t["created_at"].endswith("Z") and (t["liked"], t["retweeted"]) == (
        False,
        False,
    )
    anonymous = client.simulate_get(f"/tweet/id/{t['id']}").json
    assert "liked" not in anonymous


def test_idempotency_key_returns_the_first_tweet(client):
    _, h = user_with_token(client, username="alice")
    key = {"Idempotency-Key": "abc-123"}
    first = client.simulate_post(
        "/tweet/create", json={"tweet_content": "once"}, headers={**h, **key}
    )
    second = client.simulate_post(
        "/tweet/create", json={"tweet_content": "once"}, headers={**h, **key}
    )
    assert first.status_code == second.status_code == 201
    assert first.json["id"] == second.json["id"]
    other = client.simulate_post(
        "/tweet/create", json={"tweet_content": "different"}, headers={**h, **key}
    )
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    assert client.simulate_get("/user/data/alice").json["tweet_count"] == 1


def test_replies_survive_the_deleted_parent(client):
    _, h = user_with_token(client, username="alice")
    parent = post(client, h, "parent").json["id"]
    reply = post(client, h, "child", reply_to=parent).json
    assert reply["reply_to"] == parent
    assert (
        client.simulate_delete(f"/tweet/id/{parent}/delete", headers=h).status_code
        == 204
    )
    assert client.simulate_get(f"/tweet/id/{parent}").status_code == 404
    assert client.simulate_get(f"/tweet/id/{reply['id']}").json["reply_to"] == parent
    assert post(client, h, "x", reply_to="123").status_code == 404


def test_only_the_author_deletes(client):
    _, a = user_with_token(client, username="alice")
    _, b = user_with_token(client, username="bob")
    tid = post(client, a).json["id"]
    r = client.simulate_delete(f"/tweet/id/{tid}/delete", headers=b)
    assert r.status_code == 403 and r.json["code"] == "not_author"
    assert client.simulate_get(f"/tweet/id/{tid}").status_code == 200


def test_likes_are_idempotent_and_dislike_removes(client):
    _, a = user_with_token(client, username="alice")
    _, b = user_with_token(client, username="bob")
    tid = post(client, a).json["id"]
    for _ in range(2):
        r = client.simulate_post(f"/tweet/id/{tid}/like", headers=b)
        assert r.json == {"liked": True, "like_count": 1}
    assert client.simulate_get(f"/tweet/id/{tid}", headers=b).json["liked"] is True
    for _ in range(2):
        r = client.simulate_post(f"/tweet/id/{tid}/dislike", headers=b)
        assert r.json == {"liked": False, "like_count": 0}


def test_retweet_semantics(client):
    alice, a = user_with_token(client, username="alice")
    bob, b = user_with_token(client, username="bob")
    carol, c = user_with_token(client, username="carol")
    tid = post(client, a, "original").json["id"]
    first = client.simulate_post(f"/tweet/id/{tid}/retweet", headers=b)
    assert first.status_code == 201
    rt = first.json
    assert rt["tweet_content"] == "" and rt["retweet_of"]["id"] == tid
    assert rt["user_id"] == "bob" and rt["id"] != tid
    again = client.simulate_post(f"/tweet/id/{tid}/retweet", headers=b)
    assert again.status_code == 200 and again.json["id"] == rt["id"]
    # retweeting a retweet retweets its original; your own tweet is fine too
    via = client.simulate_post(f"/tweet/id/{rt['id']}/retweet", headers=c).json
    assert via["retweet_of"]["id"] == tid
    assert (
        client.simulate_post(f"/tweet/id/{tid}/retweet", headers=a).status_code == 201
    )
    assert client.simulate_get(f"/tweet/id/{tid}").json["retweet_count"] == 3
    # undo by the retweet's own id
    r = client.simulate_delete(f"/tweet/id/{via['id']}/retweet", headers=c)
    assert r.json == {"retweeted": False, "retweet_count": 2}
    # deleting the original deletes its retweets
    client.simulate_delete(f"/tweet/id/{tid}/delete", headers=a)
    assert client.simulate_get(f"/tweet/id/{rt['id']}").status_code == 404
    assert client.simulate_get("/user/data/bob").json["tweet_count"] == 0


def test_a_create_by_a_vanished_account_is_401_and_leaves_no_job(client):
    # Given a valid token whose account row is gone (deleted under it)
    from core import db

    alice, a_h = user_with_token(client, username="alice")
    _, b_h = user_with_token(client, username="bob")
    assert post(client, a_h, "warm").status_code == 201  # statement prepared
    db.execute("DELETE FROM tweets WHERE author_id = %s", (int(alice["id"]),))
    db.execute("DELETE FROM outbox")
    db.execute("DELETE FROM users WHERE id = %s", (int(alice["id"]),))
    db.database.close()
    # When it posts, the prepared create fails on the foreign key
    r = post(client, a_h, "ghost")
    assert r.status_code == 401 and r.json["code"] == "invalid_token"
    # Then nothing was written, and creates go on working
    assert db.fetchone("SELECT count(*) FROM outbox")[0] == 0
    db.database.close()
    assert post(client, b_h, "still fine").status_code == 201
    assert post(client, b_h, "reply", reply_to="123").status_code == 404
