"""The timeline actors: what they send on, as the worker runs them."""

from core import fanout
from core.timelines import NO_BOUND
from tests.factories import user_with_token


def test_a_big_authors_chunks_go_out_in_one_batch(client, drain, deps, monkeypatch):
    # The tests' threshold is too low to chunk for real: fake the split
    from workers.actors import timelines as actors

    # Given bob's home, materialized, then emptied after alice's tweet
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    client.simulate_get("/timeline/home", headers=b_h)
    r = client.simulate_post("/tweet/create", json={"tweet_content": "hi"}, headers=a_h)
    drain()
    store, key = deps.timelines.store, deps.timelines.store.home_key(int(bob["id"]))
    store.delete([key])
    store.rebuild(key, [])

    # When the tweet's fan-out message splits into two chunks
    def split(deps, tweet_id, author_id, send_chunk):
        send_chunk(tweet_id, author_id, 0, NO_BOUND - 7)
        send_chunk(tweet_id, author_id, NO_BOUND - 7, NO_BOUND - 6)
        return 0

    monkeypatch.setattr(fanout, "fanout_tweet", split)
    actors.fanout_tweet.send(int(r.json["id"]), int(alice["id"]))
    # Then the chunks went out and ran: the tweet is back in his home
    drain()
    assert [e[0] for e in store.read([key])[0].entries()] == [int(r.json["id"])]
