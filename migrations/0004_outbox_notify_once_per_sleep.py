"""Wake a sleeping outbox relay once, not on every commit until it wakes.

With 0003, writers notified for as long as ``outbox_relay_state.idle`` stayed
set, and only the relay cleared it: a relay slow to wake, stopped (SIGSTOP) or
hung left every create paying Postgres's cluster-wide NOTIFY lock at commit,
single file. Now the first writer to see the flag clears it and notifies; the
writers behind it see it cleared and do not. The relay still sets the flag and
passes the advisory-lock barrier before its last look (see 0003), so no job
commits unseen; a writer that clears the flag holds its row lock until it
commits, so a relay setting it again waits for that commit too.

Writers of an older release keep 0003's function until they are gone (this
replaces it); relays of the release before 0003 are then notified once per
flag-setting by a newer relay and otherwise fall back to their poll.
"""

RELAY_SLEEP_LOCK = 0x6F75_7462  # core.outbox.RELAY_SLEEP_LOCK, frozen


def up(db, migrator):
    db.execute_sql(
        f"""
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({RELAY_SLEEP_LOCK});
    UPDATE outbox_relay_state SET idle = false WHERE idle;
    IF FOUND THEN
        PERFORM pg_notify('outbox', '');
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""
    )
