"""Domain errors. The API maps each class to one HTTP status, once."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``code`` is the stable machine string clients see."""

    code = "error"
    title = "Error"

    def __init__(self, detail: str = "", code: str | None = None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.extra = extra


class BadRequest(DomainError):
    """Malformed input (wrong type, undecodable, not an object)."""

    code = "bad_request"
    title = "Malformed request"


class ValidationFailed(DomainError):
    """Well-formed but invalid input."""

    code = "invalid"
    title = "Invalid input"


class MissingField(ValidationFailed):
    code = "missing_field"
    title = "A required field is missing"


class Unauthorized(DomainError):
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Not allowed"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class Unavailable(DomainError):
    """A dependency (Postgres, Redis, broker) does not answer."""

    code = "unavailable"
    title = "Service temporarily unavailable"


class RateLimited(DomainError):
    """Too many requests in a rate-limit bucket; ``retry_after`` is in seconds."""

    code = "rate_limited"
    title = "Too many requests"
