"""Pages: an RFC 8288 Link to the next page, and limits as documented."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.factories import user_with_token

NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def next_link(response) -> str | None:
    header = response.headers.get("link")
    if header is None:
        return None
    match = NEXT.match(header)
    assert match, header
    return match.group(1)


def test_every_paginated_list_links_to_its_next_page(client):
    # Given kate with 3 tweets and 3 followers, followed by each of them
    kate, kate_h = user_with_token(client, username="kate")
    for i in range(3):
        client.simulate_post(
            "/tweet/create", json={"tweet_content": f"t{i}"}, headers=kate_h
        )
        _, h = user_with_token(client, username=f"fan{i}")
        client.simulate_post("/user/follow", params={"username": "kate"}, headers=h)
    lists = [
        ("/timeline/home", {}, kate_h),
        ("/timeline/user", {"username": "kate"}, {}),
        ("/user/kate/followers", {}, {}),
    ]
    for path, params, headers in lists:
        # When the first page of two is read (twice: the second may be cached)
        for _ in range(2):
            first = client.simulate_get(
                path, params={**params, "limit": "2", "start": "0"}, headers=headers
            )
            assert first.status_code == 200
            link = next_link(first)
            # Then its Link names this list with the next cursor, start dropped
            assert link is not None, path
            url = urlsplit(link)
            query = parse_qs(url.query)
            assert url.path == path
            assert query["cursor"] == [first.json["next_cursor"]]
            assert query["limit"] == ["2"] and "start" not in query
        # and following it gives the last page, which has no Link
        last = client.simulate_get(url.path, query_string=url.query, headers=headers)
        assert last.status_code == 200 and last.json["data"]
        assert last.json["next_cursor"] is None and next_link(last) is None


def test_a_limit_above_the_maximum_is_clamped_however_large(client):
    _, headers = user_with_token(client)
    for raw in ("101", "99999999999", "1" + "0" * 40):
        r = client.simulate_get(
            "/timeline/home", params={"limit": raw}, headers=headers
        )
        assert r.status_code == 200, (raw, r.text)
