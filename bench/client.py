"""A plain keep-alive HTTP client for the few requests made outside load runs."""

from __future__ import annotations

import http.client
import time

import orjson

# gunicorn closes kept-alive connections idle for `keepalive` (5 s): reconnect
# before that rather than retry a POST that may have been applied.
MAX_IDLE_S = 2.0


class Api:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.last_used = 0.0

    def call(self, method: str, path: str, token: str = "", body=None):
        """(status, decoded JSON or None)."""
        if time.monotonic() - self.last_used > MAX_IDLE_S:
            self.conn.close()
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=payload, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        self.last_used = time.monotonic()
        return resp.status, (orjson.loads(raw) if raw else None)

    def tweet(self, token: str, text: str) -> int:
        status, body = self.call(
            "POST", "/tweet/create", token, {"tweet_content": text}
        )
        if status != 201:
            raise RuntimeError(f"tweet create answered {status}: {body}")
        return int(body["id"])

    def close(self) -> None:
        self.conn.close()
