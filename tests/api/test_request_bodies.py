"""Request bodies: JSON declared as JSON only, bounded, whatever the framing."""

from __future__ import annotations

import pytest

from tests.factories import auth_header, signup, user_with_token

BODY = '{"username": "kate", "email": "kate@example.com", "password": "password123"}'


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json; charset=latin-1",
    ],
)
def test_a_json_body_declared_as_anything_else_is_415(client, content_type):
    # When a browser form or a "simple" cross-site request carries JSON
    r = client.simulate_post(
        "/auth/signup", body=BODY, headers={"Content-Type": content_type}
    )
    # Then it is refused before anything is done with it
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["code"] == "unsupported_media_type"
    assert client.simulate_get("/user/data/kate").status_code == 404


def test_a_body_without_content_type_is_415_on_every_body_route(client):
    _, headers = user_with_token(client)
    for method, path in (
        ("POST", "/auth/signup"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh-token"),
        ("PUT", "/user"),
        ("PATCH", "/user"),
        ("POST", "/tweet/create"),
    ):
        r = client.simulate_request(method, path, body="{}", headers=headers)
        assert r.status_code == 415, (method, path, r.text)


def test_cookie_session_cannot_post_a_form_encoded_tweet(client):
    # Given a user logged in through cookies
    signup(client, username="kate")
    login = client.simulate_post(
        "/auth/login", json={"username": "kate", "password": "password123"}
    )
    cookie = {"access-Token": login.cookies["access-Token"].value}
    # When another site makes the browser post a text/plain body
    r = client.simulate_post(
        "/tweet/create",
        body='{"tweet_content": "pwned"}',
        headers={"Content-Type": "text/plain"},
        cookies=cookie,
    )
    # Then nothing is posted
    assert r.status_code == 415
    page = client.simulate_get("/timeline/user", params={"username": "kate"})
    assert page.json["data"] == []


def test_json_with_utf8_charset_and_any_case_is_accepted(client):
    for i, content_type in enumerate(
        ["application/json", "Application/JSON; charset=UTF-8", "application/json;"]
    ):
        r = client.simulate_post(
            "/auth/signup",
            body=BODY.replace("kate", f"kate{i}"),
            headers={"Content-Type": content_type},
        )
        assert r.status_code == 201, (content_type, r.text)


def test_refresh_with_a_non_json_body_is_415_and_cookie_refresh_still_works(client):
    # Given a logged-in user
    user = signup(client)
    login = client.simulate_post(
        "/auth/login", json={"username": user["username"], "password": "password123"}
    )
    # When the refresh token comes as a form body
    r = client.simulate_post(
        "/auth/refresh-token",
        body="refresh_token=" + login.json["refresh_token"],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    # Then it is a 415
    assert r.status_code == 415
    # When it comes in its cookie (with any Authorization)
    r = client.simulate_post(
        "/auth/refresh-token",
        cookies={"refresh-Token": login.cookies["refresh-Token"].value},
        headers=auth_header("ignored"),
    )
    # Then it refreshes
    assert r.status_code == 200
