"""Small helpers that drive the API like a client would."""

from __future__ import annotations

import itertools

_counter = itertools.count(1)


def signup(
    client,
    *,
    username: str | None = None,
    password: str = "password123",
    email: str | None = None,
) -> dict:
    name = username or f"user{next(_counter)}"
    result = client.simulate_post(
        "/auth/signup",
        json={
            "username": name,
            "email": email or f"{name}@example.com",
            "password": password,
        },
    )
    assert result.status_code == 201, result.text
    return result.json


def login(client, username: str, password: str = "password123") -> dict:
    result = client.simulate_post(
        "/auth/login", json={"username": username, "password": password}
    )
    assert result.status_code == 200, result.text
    return result.json


def auth_header(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def user_with_token(client, **kwargs) -> tuple[dict, dict]:
    """(user, headers) for a fresh account."""
    user = signup(client, **kwargs)
    pair = login(client, user["username"], kwargs.get("password", "password123"))
    return user, auth_header(pair["access_token"])
