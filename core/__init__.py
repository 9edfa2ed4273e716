"""Domain layer shared by the API and the workers (no Falcon, no Dramatiq)."""
