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
