"""The clean-up jobs empty the Redis timeline keys they promise to.

Reads hide stale entries anyway (every page re-checks what it shows), so only
the keys themselves tell whether a delete, an unfollow or an account deletion
was cleaned up: these tests read them once the jobs have run.
"""

from __future__ import annotations

from core.timelines import HOME, USER
from tests.factories import user_with_token
from tests.support import timeline_ids


def post(client, headers, text: str) -> int:
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": text}, headers=headers
    )
    return int(r.json["id"])


def follow(client, headers, *usernames: str) -> None:
    for name in usernames:
        client.simulate_post("/user/follow", params={"username": name}, headers=headers)


def cached_keys(client, drain, *users) -> None:
    """Each (user, headers)'s home and user keys are rebuilt (a first read,
    then the job)."""
    for user, h in users:
        client.simulate_get("/timeline/home", headers=h)
        client.simulate_get("/timeline/user", params={"username": user["username"]})
    drain()


def test_a_deleted_tweet_leaves_every_followers_key(client, drain, deps):
    # Given alice's two tweets in her followers' home keys and her own keys
    alice, a_h = user_with_token(client, username="alice")
    fans = [user_with_token(client) for _ in range(2)]
    for _, h in fans:
        follow(client, h, "alice")
    cached_keys(client, drain, (alice, a_h), *fans)
    kept, gone = post(client, a_h, "kept"), post(client, a_h, "gone")
    drain()
    for fan, _ in fans:
        assert timeline_ids(deps, HOME, int(fan["id"])) == [gone, kept]
    # When she deletes one and the jobs have run
    r = client.simulate_delete(f"/tweet/id/{gone}/delete", headers=a_h)
    assert r.status_code == 204
    drain()
    # Then no key holds it any more
    for fan, _ in fans:
        assert timeline_ids(deps, HOME, int(fan["id"])) == [kept]
    for kind in (HOME, USER):
        assert timeline_ids(deps, kind, int(alice["id"])) == [kept]


def test_an_unfollow_strips_the_authors_entries_from_the_key(client, drain, deps):
    # Given bob's home key holds tweets of alice and of carol
    _, a_h = user_with_token(client, username="alice")
    _, c_h = user_with_token(client, username="carol")
    bob, b_h = user_with_token(client, username="bob")
    follow(client, b_h, "alice", "carol")
    cached_keys(client, drain, (bob, b_h))
    hers, carols = post(client, a_h, "alice's"), post(client, c_h, "carol's")
    drain()
    assert timeline_ids(deps, HOME, int(bob["id"])) == [carols, hers]
    # When bob unfollows alice and the jobs have run
    client.simulate_post("/user/unfollow", params={"username": "alice"}, headers=b_h)
    drain()
    # Then his key holds carol's tweet only
    assert timeline_ids(deps, HOME, int(bob["id"])) == [carols]


def test_a_deleted_account_leaves_every_key(client, drain, deps):
    # Given alice's tweet in bob's home key, and bob's retweet of it in the
    # home key of carol, who follows bob only
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    carol, c_h = user_with_token(client, username="carol")
    follow(client, b_h, "alice")
    follow(client, c_h, "bob")
    cached_keys(client, drain, (alice, a_h), (bob, b_h), (carol, c_h))
    hers, bobs = post(client, a_h, "alice's"), post(client, b_h, "bob's")
    retweet = int(
        client.simulate_post(f"/tweet/id/{hers}/retweet", headers=b_h).json["id"]
    )
    drain()
    assert timeline_ids(deps, HOME, int(bob["id"])) == [retweet, bobs, hers]
    assert timeline_ids(deps, HOME, int(carol["id"])) == [retweet, bobs]
    # When alice deletes her account and the jobs have run
    assert client.simulate_delete("/user", headers=a_h).status_code == 204
    drain()
    # Then her tweet, and the retweet of it, are in no key; her keys are gone
    assert timeline_ids(deps, HOME, int(bob["id"])) == [bobs]
    assert timeline_ids(deps, USER, int(bob["id"])) == [bobs]
    assert timeline_ids(deps, HOME, int(carol["id"])) == [bobs]
    for kind in (HOME, USER):
        assert timeline_ids(deps, kind, int(alice["id"])) is None
