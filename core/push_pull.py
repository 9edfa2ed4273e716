"""The push/pull rule, once in Python and once in SQL, side by side."""

from __future__ import annotations


def is_pulled(follower_count: int, threshold: int) -> bool:
    """An author this big is read at read time, not pushed to followers."""
    return follower_count >= threshold


# The same rule over a users row ``u``; the threshold is ``%(threshold)s``.
PULLED_SQL = "u.follower_count >= %(threshold)s"
