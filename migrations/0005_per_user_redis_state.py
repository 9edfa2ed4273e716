"""Per-user state for a sharded Redis: revocation owners and user activity.

``revocations.user_id`` lets one user's denylist entries be reloaded alone
(they live under the user's hash tag on one Redis node); rows written by the
previous release are attributed where Postgres knows their owner (a family's
refresh tokens, a user revocation's value). ``users.active_at`` is when the
user last used the service, written at most once a day; fan-out skips
followers inactive for ``INACTIVE_DAYS``.
"""


def up(db, migrator):
    db.execute_sql(
        """
ALTER TABLE revocations ADD COLUMN user_id bigint;
UPDATE revocations SET user_id = value::bigint WHERE kind = 'user';
UPDATE revocations r SET user_id = t.user_id FROM refresh_tokens t
 WHERE r.kind = 'family' AND t.family_id::text = r.value;
CREATE INDEX revocations_user ON revocations (user_id, expires_at);
ALTER TABLE users ADD COLUMN active_at timestamptz NOT NULL DEFAULT now();
"""
    )
