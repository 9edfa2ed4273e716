"""Use cases: each function is one thing a user can do, in one transaction."""
