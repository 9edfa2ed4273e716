"""An in-memory model of the social graph: the oracle for timeline tests.

It knows nothing of Redis, fan-out or the app's SQL: home(U) is every live tweet
and retweet by U or by someone U follows, newest first, exactly as the contract
defines it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tweet:
    id: int
    author: int
    retweet_of: int | None = None
    likes: set = field(default_factory=set)


@dataclass
class Model:
    users: set = field(default_factory=set)
    follows: set = field(default_factory=set)  # (follower, followee)
    tweets: dict = field(default_factory=dict)  # id -> Tweet

    def following(self, user: int) -> set:
        return {b for a, b in self.follows if a == user}

    def followers(self, user: int) -> set:
        return {a for a, b in self.follows if b == user}

    def home(self, user: int) -> list[int]:
        authors = self.following(user) | {user}
        return sorted(
            (t.id for t in self.tweets.values() if t.author in authors), reverse=True
        )

    def user_timeline(self, user: int) -> list[int]:
        return sorted(
            (t.id for t in self.tweets.values() if t.author == user), reverse=True
        )

    def retweet_by(self, user: int, original: int) -> int | None:
        for t in self.tweets.values():
            if t.author == user and t.retweet_of == original:
                return t.id
        return None

    def original(self, tweet_id: int) -> int:
        return self.tweets[tweet_id].retweet_of or tweet_id

    def delete_tweet(self, tweet_id: int) -> None:
        self.tweets.pop(tweet_id, None)
        for rid in [t.id for t in self.tweets.values() if t.retweet_of == tweet_id]:
            self.tweets.pop(rid)

    def delete_user(self, user: int) -> None:
        self.users.discard(user)
        self.follows = {(a, b) for a, b in self.follows if user not in (a, b)}
        for tid in [t.id for t in self.tweets.values() if t.author == user]:
            self.delete_tweet(tid)
        for t in self.tweets.values():
            t.likes.discard(user)

    def counts(self, user: int) -> dict:
        return {
            "follower_count": len(self.followers(user)),
            "following_count": len(self.following(user)),
            "tweet_count": len(self.user_timeline(user)),
        }
