from tests.factories import user_with_token


def test_signup_login_follow_tweet_timeline(client):
    # Given bob follows alice
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    r = client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    assert r.status_code == 200 and r.json == {"following": True}
    # When alice tweets
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": "hello"}, headers=a_h
    )
    assert r.status_code == 201, r.text
    tid = r.json["id"]
    # Then both homes show it, and her counts say so
    r = client.simulate_get("/timeline/home", headers=a_h)
    assert [t["id"] for t in r.json["data"]] == [tid]
    r = client.simulate_get("/timeline/home", headers=b_h)
    assert [t["id"] for t in r.json["data"]] == [tid], r.text
    r = client.simulate_get("/user/data/alice")
    assert r.json["follower_count"] == 1 and r.json["tweet_count"] == 1
