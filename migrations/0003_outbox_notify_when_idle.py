"""Notify the outbox relay only while it sleeps.

Before: every statement inserting into ``outbox`` ran ``pg_notify``. Up to
Postgres 16 a transaction that notifies takes one cluster-wide lock at commit
and keeps it through its WAL flush, so every tweet create committed single
file, and the relay woke for each one and relayed it alone.

After: ``outbox_relay_state.idle`` says whether a relay sleeps on
``LISTEN outbox``. A busy relay polls every few milliseconds and needs no
wake-up, so writers notify only while the flag is set. No job can slip
between the flag and the relay's last look: writers take a shared advisory
lock before reading the flag, and a relay going to sleep sets the flag, then
takes the same lock exclusively (waiting for every writer that may have read
the old value to commit), then looks at the outbox once more.

Expand-only: the flag starts set, so relays of the previous release, which
never clear it, are notified as before.
"""

# The advisory lock shared by writers and a relay going to sleep; the same
# value as core.outbox.RELAY_SLEEP_LOCK (frozen here like every migration).
RELAY_SLEEP_LOCK = 0x6F75_7462  # "outb"


def up(db, migrator):
    db.execute_sql(
        "CREATE TABLE outbox_relay_state ("
        " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
        " idle boolean NOT NULL DEFAULT true)"
    )
    db.execute_sql("INSERT INTO outbox_relay_state DEFAULT VALUES")
    db.execute_sql(
        f"""
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({RELAY_SLEEP_LOCK});
    IF (SELECT idle FROM outbox_relay_state) THEN
        PERFORM pg_notify('outbox', '');
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""
    )
