"""Log-in sessions: token pairs, rotation with reuse detection, logout.

A login starts a *family*. Each refresh spends the presented refresh token and
issues a new pair in the same family; presenting a spent token again means it
was stolen, so the whole family (refresh and access tokens) is revoked at once.
Refresh tokens are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid

from peewee import fn

from core import db, metrics, revocation, validation
from core.container import Deps
from core.errors import Unauthorized
from core.first_round import FirstRound
from core.models import RefreshToken, User
from core.tokens import ACCESS, REFRESH, Claims

BAD_LOGIN = "Wrong username or password"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _issue_pair(deps: Deps, user_id: int, family_id: str) -> dict:
    access, _ = deps.tokens.issue(user_id, family_id, ACCESS)
    refresh, claims = deps.tokens.issue(user_id, family_id, REFRESH)
    RefreshToken.insert(
        token_hash=_hash(refresh),
        family_id=family_id,
        user=user_id,
        expires_at=fn.to_timestamp(claims.expires_at),
    ).execute()
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": deps.settings.access_token_ttl_s,
    }


@contextlib.contextmanager
def unguarded(account: str):
    """No limits: tools and tests that call the services directly."""
    yield


def account_key(user_id: int) -> str:
    """The name a password guard counts an account's attempts under."""
    return f"a{user_id}"


def login(deps: Deps, body: dict, guard=unguarded) -> dict:
    """A new token pair; unknown user and wrong password fail identically.

    ``guard(account)`` wraps the password check (the API's failed-login
    limits); unknown names are guarded too, by name, so that limits behave the
    same whether or not the account exists.
    """
    username = validation.required_str(body, "username")
    password = validation.password_to_check(validation.required_str(body, "password"))
    row = None
    if validation.USERNAME.fullmatch(username):
        # lower() on both sides: the users_username_ci index serves it
        row = (
            User.select(User.id, User.password_hash)
            .where(fn.lower(User.username) == fn.lower(username))
            .dicts()
            .first()
        )
        account = account_key(row["id"]) if row else f"n:{username.lower()}"
    else:
        account = "n:"  # no account can have this name
    with guard(account):
        if not deps.passwords.verify(row["password_hash"] if row else None, password):
            metrics.LOGINS.labels("failed").inc()
            raise Unauthorized(BAD_LOGIN, code="invalid_credentials")
    metrics.LOGINS.labels("ok").inc()
    user_id = row["id"]
    if deps.passwords.needs_rehash(row["password_hash"]):
        (
            User.update(password_hash=deps.passwords.hash(password))
            .where(User.id == user_id)
            .execute()
        )
    with db.database.atomic():
        return _issue_pair(deps, user_id, str(uuid.uuid4()))


def refresh(deps: Deps, token: str) -> dict:
    """Spend a refresh token for a new pair; a replayed one revokes its family."""
    claims = deps.tokens.verify(token, REFRESH)

    def work():
        spent = (
            RefreshToken.update(used_at=fn.now())
            .where(
                RefreshToken.token_hash == _hash(token),
                RefreshToken.used_at.is_null(),
                RefreshToken.revoked_at.is_null(),
                RefreshToken.expires_at > fn.now(),
            )
            .returning(
                RefreshToken.user_id.alias("user_id"),
                RefreshToken.family_id.cast("text").alias("family_id"),
            )
            .dicts()
            .execute()
        )
        for row in spent:  # one row at most: the token hash is the key
            return _issue_pair(deps, row["user_id"], row["family_id"])
        return None

    pair = db.in_transaction(work)
    if pair is None:
        used_at = (
            RefreshToken.select(RefreshToken.used_at)
            .where(RefreshToken.token_hash == _hash(token))
            .scalar()
        )
        if used_at is not None:
            metrics.REFRESH_REUSE.inc()
            revoke_family(deps, claims.user_id, claims.family_id)
            raise Unauthorized(
                "Refresh token reused; the session was ended", code="token_reused"
            )
        raise Unauthorized("Refresh token no longer valid", code="invalid_token")
    return pair


def revoke_family(deps: Deps, user_id: int, family_id: str) -> None:
    with db.database.atomic():
        (
            RefreshToken.update(revoked_at=fn.now())
            .where(
                RefreshToken.family_id.cast("text") == family_id,
                RefreshToken.revoked_at.is_null(),
            )
            .execute()
        )
        deps.denylist.revoke(
            user_id, revocation.FAMILY, family_id, deps.settings.access_token_ttl_s + 60
        )


def logout(deps: Deps, claims: Claims) -> None:
    """End the session: its refresh family and this access token, at once."""
    revoke_family(deps, claims.user_id, claims.family_id)
    deps.denylist.revoke(claims.user_id, revocation.JTI, claims.jti, claims.ttl())


def authenticate(deps: Deps, token: str) -> Claims:
    """Claims of a valid, unrevoked access token; Unauthorized otherwise."""
    claims = verify_access(deps, token)
    check_not_revoked(deps, claims)
    return claims


def check_in(deps: Deps, first: FirstRound, claims: Claims) -> None:
    """Queue the token's revocation check in a request's first round trip;
    the round trip raises Unauthorized for a revoked token as it returns."""
    user, jti, family = claims.user_id, claims.jti, claims.family_id
    at = first.add("MGET", *deps.denylist.check_keys(user, jti, family))

    def check(replies):
        if deps.denylist.verdict(replies[at], user, jti, family):
            raise revoked()

    first.before_use(check)


def verify_access(deps: Deps, token: str) -> Claims:
    """Signature, type and lifetime only: callers must also check revocation."""
    return deps.tokens.verify(token, ACCESS)


def check_not_revoked(deps: Deps, claims: Claims) -> None:
    if deps.denylist.is_revoked(claims.user_id, claims.jti, claims.family_id):
        raise revoked()


def revoked() -> Unauthorized:
    return Unauthorized("Token revoked", code="token_revoked")
