"""Domain errors. The API maps each class to one HTTP status, once."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``code`` is the stable machine string clients see."""

    code = "error"
    title = "Error"

    def __init_subclass__(cls, code: str | None = None, title: str | None = None):
        """``class X(DomainError, code=..., title=...)`` sets both; else inherited."""
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if title is not None:
            cls.title = title

    def __init__(self, detail: str = "", code: str | None = None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.extra = extra


class BadRequest(DomainError, code="bad_request", title="Malformed request"):
    """Malformed input (wrong type, undecodable, not an object)."""


class ValidationFailed(DomainError, code="invalid", title="Invalid input"):
    """Well-formed but invalid input."""


class MissingField(
    ValidationFailed, code="missing_field", title="A required field is missing"
):
    """A required field is absent from the body."""


class Unauthorized(DomainError, code="unauthorized", title="Authentication required"):
    """No valid credentials."""


class Forbidden(DomainError, code="forbidden", title="Not allowed"):
    """Authenticated, but not allowed to do this."""


class NotFound(DomainError, code="not_found", title="Not found"):
    """No such resource."""


class Conflict(DomainError, code="conflict", title="Conflict"):
    """The request clashes with the current state (e.g. a taken username)."""


class Unavailable(
    DomainError, code="unavailable", title="Service temporarily unavailable"
):
    """A dependency (Postgres, Redis, broker) does not answer."""


class RateLimited(DomainError, code="rate_limited", title="Too many requests"):
    """Too many requests in a rate-limit bucket; ``retry_after`` is in seconds."""
