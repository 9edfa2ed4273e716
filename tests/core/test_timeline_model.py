"""Model-based test of the one rule: after quiescence, every timeline = the oracle.

Many users post, reply, retweet, like, delete, follow, unfollow and delete their
accounts through the API while a real worker fans out concurrently; the fan-out
threshold is small (5) so both push and pull paths and the crossings are used,
and the cap is small (30) so deep pages come from Postgres.
"""

from __future__ import annotations

import random

import pytest

from tests.factories import auth_header, login, signup
from tests.model import Model, Tweet
from tests.support import clear_redis_prefix


class Driver:
    def __init__(self, client, rng: random.Random):
        self.client = client
        self.rng = rng
        self.model = Model()
        self.headers: dict[int, dict] = {}
        self.names: dict[int, str] = {}

    # ------------------------------------------------------------ actions
    def add_user(self) -> None:
        user = signup(self.client)
        uid = int(user["id"])
        self.model.users.add(uid)
        self.names[uid] = user["username"]
        self.headers[uid] = auth_header(
            login(self.client, user["username"])["access_token"]
        )

    def some_user(self) -> int:
        return self.rng.choice(sorted(self.model.users))

    def some_tweet(self) -> int | None:
        ids = sorted(self.model.tweets)
        return self.rng.choice(ids) if ids else None

    def post(self, reply: bool = False) -> None:
        uid = self.some_user()
        body = {"tweet_content": f"tweet {self.rng.random()}"}
        if reply and (parent := self.some_tweet()):
            body["reply_to"] = str(parent)
        r = self.client.simulate_post(
            "/tweet/create", json=body, headers=self.headers[uid]
        )
        assert r.status_code == 201, r.text
        tid = int(r.json["id"])
        self.model.tweets[tid] = Tweet(tid, uid)
        # read-your-writes: the very next read shows it
        first = self.client.simulate_get(
            "/timeline/home", params={"limit": 1}, headers=self.headers[uid]
        )
        assert first.json["data"][0]["id"] == str(tid)

    def retweet(self) -> None:
        uid, tid = self.some_user(), self.some_tweet()
        if tid is None:
            return
        r = self.client.simulate_post(
            f"/tweet/id/{tid}/retweet", headers=self.headers[uid]
        )
        original = self.model.original(tid)
        existing = self.model.retweet_by(uid, original)
        assert r.status_code == (200 if existing else 201), r.text
        rid = int(r.json["id"])
        if existing:
            assert rid == existing
        else:
            self.model.tweets[rid] = Tweet(rid, uid, retweet_of=original)

    def unretweet(self) -> None:
        uid, tid = self.some_user(), self.some_tweet()
        if tid is None:
            return
        r = self.client.simulate_delete(
            f"/tweet/id/{tid}/retweet", headers=self.headers[uid]
        )
        assert r.status_code == 200, r.text
        rid = self.model.retweet_by(uid, self.model.original(tid))
        if rid:
            self.model.tweets.pop(rid)

    def like(self) -> None:
        uid, tid = self.some_user(), self.some_tweet()
        if tid is None:
            return
        action = self.rng.choice(["like", "dislike"])
        r = self.client.simulate_post(
            f"/tweet/id/{tid}/{action}", headers=self.headers[uid]
        )
        assert r.status_code == 200, r.text
        likes = self.model.tweets[self.model.original(tid)].likes
        (likes.add if action == "like" else likes.discard)(uid)
        assert r.json["like_count"] == len(likes)

    def delete_tweet(self) -> None:
        tid = self.some_tweet()
        if tid is None:
            return
        author = self.model.tweets[tid].author
        r = self.client.simulate_delete(
            f"/tweet/id/{tid}/delete", headers=self.headers[author]
        )
        assert r.status_code == 204, r.text
        self.model.delete_tweet(tid)
        # gone from the author's home on the very next read
        ids = [
            t["id"]
            for t in self.client.simulate_get(
                "/timeline/home", headers=self.headers[author]
            ).json["data"]
        ]
        assert str(tid) not in ids

    def follow(self, unfollow: bool = False) -> None:
        a, b = self.some_user(), self.some_user()
        if a == b:
            return
        path = "/user/unfollow" if unfollow else "/user/follow"
        r = self.client.simulate_post(
            path, params={"username": self.names[b]}, headers=self.headers[a]
        )
        assert r.status_code == 200, r.text
        (self.model.follows.discard if unfollow else self.model.follows.add)((a, b))
        if unfollow:
            ids = {
                int(t["author_id"])
                for t in self.client.simulate_get(
                    "/timeline/home", params={"limit": 100}, headers=self.headers[a]
                ).json["data"]
            }
            assert b not in ids

    def delete_account(self) -> None:
        if len(self.model.users) < 4:
            return
        uid = self.some_user()
        r = self.client.simulate_delete("/user", headers=self.headers[uid])
        assert r.status_code == 204, r.text
        self.model.delete_user(uid)
        assert (
            self.client.simulate_get(
                "/timeline/home", headers=self.headers.pop(uid)
            ).status_code
            == 401
        )

    def read(self) -> None:
        uid = self.some_user()
        r = self.client.simulate_get("/timeline/home", headers=self.headers[uid])
        assert r.status_code == 200

    def step(self) -> None:
        action = self.rng.choices(
            [
                self.post,
                lambda: self.post(reply=True),
                self.retweet,
                self.unretweet,
                self.like,
                self.delete_tweet,
                self.follow,
                lambda: self.follow(unfollow=True),
                self.delete_account,
                self.read,
                self.add_user,
            ],
            weights=[30, 5, 10, 3, 6, 6, 22, 9, 1, 8, 1],
        )[0]
        action()

    # ------------------------------------------------------------- checks
    def walk(self, path: str, params: dict, headers: dict | None) -> list[int]:
        ids, cursor = [], None
        for _ in range(1000):
            query = dict(params, limit=self.rng.randint(1, 9))
            if cursor:
                query["cursor"] = cursor
            r = self.client.simulate_get(path, params=query, headers=headers)
            assert r.status_code == 200, r.text
            ids += [int(t["id"]) for t in r.json["data"]]
            cursor = r.json["next_cursor"]
            if not cursor:
                return ids
        raise AssertionError("pagination did not end")

    def check_everyone(self) -> None:
        for uid in sorted(self.model.users):
            home = self.walk("/timeline/home", {}, self.headers[uid])
            assert home == self.model.home(uid), f"home of {uid}"
            mine = self.walk("/timeline/user", {"username": self.names[uid]}, None)
            assert mine == self.model.user_timeline(uid), f"user timeline of {uid}"
            profile = self.client.simulate_get(f"/user/data/{self.names[uid]}").json
            assert {k: profile[k] for k in self.model.counts(uid)} == (
                self.model.counts(uid)
            )
        for tid, tweet in self.model.tweets.items():
            got = self.client.simulate_get(f"/tweet/id/{tid}").json
            if tweet.retweet_of is None:
                assert got["like_count"] == len(tweet.likes)
                assert got["retweet_count"] == sum(
                    1 for t in self.model.tweets.values() if t.retweet_of == tid
                )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_timelines_equal_oracle_after_random_activity(client, drain, deps, seed):
    # Given a dozen users with random activity while the worker fans out
    driver = Driver(client, random.Random(seed))
    for _ in range(12):
        driver.add_user()
    for _ in range(350):
        driver.step()
    # When every job has been processed
    drain()
    # Then every home and user timeline equals the oracle, page by page
    driver.check_everyone()
    # and again once Redis has lost everything (rebuilt from Postgres)
    clear_redis_prefix(deps.redis)
    driver.check_everyone()
