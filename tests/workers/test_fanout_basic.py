import threading

from core import fanout
from core.timelines import NO_BOUND
from tests.factories import user_with_token


def test_pushed_tweet_reaches_materialized_home(client, drain, deps):
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    # bob's home is materialized before alice posts
    assert client.simulate_get("/timeline/home", headers=b_h).json["data"] == []
    drain()
    r = client.simulate_post("/tweet/create", json={"tweet_content": "hi"}, headers=a_h)
    drain()
    store = deps.timelines.store
    tl = store.read([store.home_key(int(bob["id"]))])[0]
    assert [e[0] for e in tl.entries()] == [int(r.json["id"])]


def test_a_chunk_pushes_the_authors_burst_once_per_slice(client, drain, deps):
    # Given an author's three tweets, fanned out, and the homes reset as if
    # the chunks had not run yet
    alice, a_h = user_with_token(client, username="alice")
    fans = [user_with_token(client) for _ in range(3)]
    for _, h in fans:
        client.simulate_post("/user/follow", params={"username": "alice"}, headers=h)
        client.simulate_get("/timeline/home", headers=h)
    posted = [
        int(
            client.simulate_post(
                "/tweet/create", json={"tweet_content": f"t{i}"}, headers=a_h
            ).json["id"]
        )
        for i in range(3)
    ]
    drain()
    store, author = deps.timelines.store, int(alice["id"])
    keys = [store.home_key(int(fan["id"])) for fan, _ in fans]

    def reset():
        store.delete(keys)
        for key in keys:
            store.rebuild(key, [])

    def homes():
        return [[e[0] for e in t.entries()] for t in store.read(keys)]

    reset()
    # When the first tweet's chunk runs, it takes the two newer ones along
    assert fanout.fanout_chunk(deps, posted[0], author, 0, NO_BOUND) == 3
    assert homes() == [posted[::-1]] * 3
    # and the newer tweets' chunks for the same slice find their work done
    reset()
    assert fanout.fanout_chunk(deps, posted[1], author, 0, NO_BOUND) == 0
    assert homes() == [[]] * 3
    # while another slice (other bounds) is pushed again, from that tweet on
    assert fanout.fanout_chunk(deps, posted[1], author, 0, NO_BOUND - 1) == 3
    assert homes() == [posted[:0:-1]] * 3
    # and a deleted tweet's chunk pushes nothing
    client.simulate_delete(f"/tweet/id/{posted[2]}/delete", headers=a_h)
    drain()
    reset()
    assert fanout.fanout_chunk(deps, posted[2], author, 0, NO_BOUND - 2) == 0
    assert homes() == [[]] * 3


def test_a_slice_memory_counts_pushes_in_progress_and_forgets_failed_ones():
    recent = fanout._RecentSpans(spans=2)
    recent.begin((1, 0, 9), [10, 11])
    assert recent.covers((1, 0, 9), 11)  # its push's message is not acked yet
    assert not recent.covers((1, 0, 8), 11)  # another slice
    recent.end((1, 0, 9), [10, 11], done=False)
    assert not recent.covers((1, 0, 9), 11)  # failed: the retry pushes it again
    recent.begin((1, 0, 9), [11, 12])
    recent.end((1, 0, 9), [11, 12], done=True)
    assert recent.covers((1, 0, 9), 12)
    for upto in (1, 2):  # memory is bounded: the oldest slice goes first
        recent.begin((1, 0, upto), [5])
        recent.end((1, 0, upto), [5], done=True)
    assert not recent.covers((1, 0, 9), 12)


def test_the_slice_holder_pushes_from_the_oldest_waiting_tweet():
    # Waiters are not served in order: whoever holds the slice next pushes
    # from the oldest waiting tweet on, so no older tweet lands below newer ones
    recent, span = fanout._RecentSpans(), (1, 0, 9)
    waiting = threading.Event()

    def later_chunk():
        with recent.claim(span, 5):
            pass

    with recent.claim(span, 10):
        assert recent.oldest_waiting(span, 10) == 10
        thread = threading.Thread(target=later_chunk)
        thread.start()
        while not recent._waiting.get(span, [None])[1:]:
            waiting.wait(0.01)
        assert recent.oldest_waiting(span, 10) == 5
        recent.begin(span, [5])
        recent.end(span, [5], done=True)
        assert recent.oldest_waiting(span, 10) == 10  # 5 is pushed now
    thread.join(5)
    assert span not in recent._waiting


def test_a_big_authors_chunks_go_out_in_one_batch(client, drain, deps, monkeypatch):
    # The tests' threshold is too low to chunk for real: fake the split
    from workers.actors import timelines as actors

    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    client.simulate_get("/timeline/home", headers=b_h)
    r = client.simulate_post("/tweet/create", json={"tweet_content": "hi"}, headers=a_h)
    drain()
    store, key = deps.timelines.store, deps.timelines.store.home_key(int(bob["id"]))
    store.delete([key])
    store.rebuild(key, [])

    def split(deps, tweet_id, author_id, send_chunk):
        send_chunk(tweet_id, author_id, 0, NO_BOUND - 7)
        send_chunk(tweet_id, author_id, NO_BOUND - 7, NO_BOUND - 6)
        return 0

    monkeypatch.setattr(fanout, "fanout_tweet", split)
    try:
        actors.fanout_tweet.fn(int(r.json["id"]), int(alice["id"]))
    finally:
        actors._publisher().close()
    drain()
    assert [e[0] for e in store.read([key])[0].entries()] == [int(r.json["id"])]
