"""Every Redis key the service uses: names, lifetimes, and the slot they share.

Everything kept for one user carries the hash tag ``{u<id>}``, so on a Redis
Cluster it lives in one slot of one node: their home and user timelines, their
social bits, their token denylist entries, the parts of the tweets they wrote.
A request's first round trip then goes to one node, and no script,
transaction or multi-key command ever spans two users (Redis Cluster would
refuse it with CROSSSLOT). Keys not owned by a user are tagged by what they
name (``{n:<username>}``, ``{node}``) and are never read together.
"""

from __future__ import annotations

# Lifetimes, in seconds.
TWEET_TTL_S = 6 * 3600  # a tweet's cached parts
NAME_TTL_S = 6 * 3600  # an author's username, and username -> id
SOCIAL_TTL_S = 3600  # a reader's follows and like/retweet bits
SPOIL_S = 30  # after a delete, readers may not put a part back for this long
SEEN_S = 24 * 3600  # a reader's activity is written to Postgres once per this


class Keys:
    """Key names under one prefix (``REDIS_PREFIX``)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def _user(self, user_id: int, what: str) -> str:
        return f"{self.prefix}{{u{user_id}}}:{what}"

    # ---- timelines (core.timeline_store)
    def home(self, user_id: int) -> str:
        return self._user(user_id, "home")

    def user_timeline(self, user_id: int) -> str:
        return self._user(user_id, "utl")

    # ---- the reader's side of the read cache (core.read_cache)
    def social(self, user_id: int) -> str:
        """Hash: pulled authors, like/retweet flags per tweet."""
        return self._user(user_id, "vs")

    def generation(self, user_id: int) -> str:
        """Bumped by each of the reader's social writes (see read_cache)."""
        return self._user(user_id, "vg")

    def seen(self, user_id: int) -> str:
        return self._user(user_id, "seen")

    # ---- the author's side: tweet parts and name
    def tweet(self, author_id: int, tweet_id: int) -> str:
        """Hash: ``c`` the fields that never change, ``n`` the counts."""
        return self._user(author_id, f"t:{tweet_id}")

    def name(self, author_id: int) -> str:
        return self._user(author_id, "name")

    def user_id(self, username: str) -> str:
        return f"{self.prefix}{{n:{username.lower()}}}:uid"

    # ---- token revocations (core.revocation)
    def denied(self, user_id: int, kind: str, value: str) -> str:
        return self._user(user_id, f"deny:{kind}:{value}")

    def deny_loaded(self, user_id: int) -> str:
        """Present while the user's denylist entries are known to be loaded."""
        return self._user(user_id, "deny")

    # ---- processes
    def id_node(self, node: int) -> str:
        return f"{self.prefix}idnode:{node}"


def spoiled(key: str) -> str:
    """The marker that keeps readers from refilling ``key`` after a delete
    (same hash tag, so a fill script may read both)."""
    return key + "~"
