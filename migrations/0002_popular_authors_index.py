"""Find the few pulled (big) authors without scanning every user.

Home reads ask which followees are at or above FANOUT_THRESHOLD. A partial
index over users with at least 1000 followers keeps that an index probe for any
threshold of 1000 or more (the production range) and stays tiny. Expand-only:
old code ignores it.
"""

POPULAR_FLOOR = 1000


def up(db, migrator):
    db.execute_sql(
        "CREATE INDEX users_popular ON users (follower_count)"
        f" WHERE follower_count >= {POPULAR_FLOOR}"
    )
