"""Tweets, replies, likes and retweets as the contract describes them."""

from __future__ import annotations

from tests.factories import user_with_token


def post(client, h, text="hi", **extra):
    return client.simulate_post(
        "/tweet/create", json={"tweet_content": text, **extra}, headers=h
    )


def test_create_returns_the_tweet_with_location(client):
    alice, h = user_with_token(client, username="alice")
    # When alice tweets
    r = post(client, h, "hello")
    # Then the answer is the tweet as its author sees it, with its URL
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
    # and an anonymous reader gets no viewer flags
    anonymous = client.simulate_get(f"/tweet/id/{t['id']}").json
    assert "liked" not in anonymous


def test_idempotency_key_returns_the_first_tweet(client):
    _, h = user_with_token(client, username="alice")
    key = {"Idempotency-Key": "abc-123"}
    # When the same create is sent twice with one key
    first = client.simulate_post(
        "/tweet/create", json={"tweet_content": "once"}, headers={**h, **key}
    )
    second = client.simulate_post(
        "/tweet/create", json={"tweet_content": "once"}, headers={**h, **key}
    )
    # Then one tweet is made, and returned both times
    assert first.status_code == second.status_code == 201
    assert first.json["id"] == second.json["id"]
    # When the key comes back with another body
    other = client.simulate_post(
        "/tweet/create", json={"tweet_content": "different"}, headers={**h, **key}
    )
    # Then it is refused, and still only one tweet exists
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    assert client.simulate_get("/user/data/alice").json["tweet_count"] == 1


def test_replies_survive_the_deleted_parent(client):
    _, h = user_with_token(client, username="alice")
    # Given a reply to a tweet
    parent = post(client, h, "parent").json["id"]
    reply = post(client, h, "child", reply_to=parent).json
    assert reply["reply_to"] == parent
    # When the parent is deleted
    assert (
        client.simulate_delete(f"/tweet/id/{parent}/delete", headers=h).status_code
        == 204
    )
    # Then the reply stays, still naming it; a reply to no tweet is a 404
    assert client.simulate_get(f"/tweet/id/{parent}").status_code == 404
    assert client.simulate_get(f"/tweet/id/{reply['id']}").json["reply_to"] == parent
    assert post(client, h, "x", reply_to="123").status_code == 404


def test_only_the_author_deletes(client):
    _, a = user_with_token(client, username="alice")
    _, b = user_with_token(client, username="bob")
    # Given alice's tweet
    tid = post(client, a).json["id"]
    # When bob deletes it
    r = client.simulate_delete(f"/tweet/id/{tid}/delete", headers=b)
    # Then he is refused and the tweet stays
    assert r.status_code == 403 and r.json["code"] == "not_author"
    assert client.simulate_get(f"/tweet/id/{tid}").status_code == 200


def test_likes_are_idempotent_and_dislike_removes(client):
    _, a = user_with_token(client, username="alice")
    _, b = user_with_token(client, username="bob")
    # Given alice's tweet
    tid = post(client, a).json["id"]
    # When bob likes it twice, then it counts once and shows as liked
    for _ in range(2):
        r = client.simulate_post(f"/tweet/id/{tid}/like", headers=b)
        assert r.json == {"liked": True, "like_count": 1}
    assert client.simulate_get(f"/tweet/id/{tid}", headers=b).json["liked"] is True
    # When he dislikes it twice, then the like is gone once
    for _ in range(2):
        r = client.simulate_post(f"/tweet/id/{tid}/dislike", headers=b)
        assert r.json == {"liked": False, "like_count": 0}


def test_retweet_semantics(client):
    alice, a = user_with_token(client, username="alice")
    bob, b = user_with_token(client, username="bob")
    carol, c = user_with_token(client, username="carol")
    # Given alice's tweet
    tid = post(client, a, "original").json["id"]
    # When bob retweets it, twice
    first = client.simulate_post(f"/tweet/id/{tid}/retweet", headers=b)
    # Then one retweet exists, empty, pointing at the original
    assert first.status_code == 201
    rt = first.json
    assert rt["tweet_content"] == "" and rt["retweet_of"]["id"] == tid
    assert rt["user_id"] == "bob" and rt["id"] != tid
    again = client.simulate_post(f"/tweet/id/{tid}/retweet", headers=b)
    assert again.status_code == 200 and again.json["id"] == rt["id"]
    # When carol retweets the retweet and alice her own tweet
    via = client.simulate_post(f"/tweet/id/{rt['id']}/retweet", headers=c).json
    # Then both count on the original
    assert via["retweet_of"]["id"] == tid
    assert (
        client.simulate_post(f"/tweet/id/{tid}/retweet", headers=a).status_code == 201
    )
    assert client.simulate_get(f"/tweet/id/{tid}").json["retweet_count"] == 3
    # When a retweet is undone by its own id, the count drops
    r = client.simulate_delete(f"/tweet/id/{via['id']}/retweet", headers=c)
    assert r.json == {"retweeted": False, "retweet_count": 2}
    # When the original is deleted, its retweets go with it
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
