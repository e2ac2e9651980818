"""Access tokens (JWT, HS256 pinned) for users and partner apps, and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    tenant_id: int
    tenant_schema: str
    role: str
    expires_at: int
    # The user's session version when the token was issued (domain/accounts/sessions.py);
    # tokens from before versions existed have none: 0.
    session_version: int = 0


class InvalidToken(Exception):
    """The token is expired, forged, or not for us."""


def issue_access_token(
    *,
    secret: str,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    user_id: int,
    tenant_id: int,
    tenant_schema: str,
    role: str,
    now: float | None = None,
    session_version: int = 0,
) -> tuple[str, int]:
    issued = int(now if now is not None else time.time())
    exp = issued + ttl_seconds
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "tid": tenant_id,
        "tsc": tenant_schema,
        "role": role,
        "iat": issued,
        "exp": exp,
        "jti": uuid.uuid4().hex,
        "sv": session_version,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), exp


def decode_access_token(token: str, *, secret: str, issuer: str, audience: str) -> AccessClaims:
    """A user's access token (a partner app's token is refused here)."""
    claims = decode_bearer_token(token, secret=secret, issuer=issuer, audience=audience)
    if not isinstance(claims, AccessClaims):
        raise InvalidToken("invalid access token")
    return claims


@dataclass(frozen=True)
class ClientClaims:
    """A partner app's access token (OAuth 2.0 client credentials): no user, the granted
    scopes only."""

    client_id: str
    tenant_id: int
    tenant_schema: str
    scopes: frozenset[str]
    expires_at: int


def issue_client_token(
    *,
    secret: str,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    client_id: str,
    tenant_id: int,
    tenant_schema: str,
    scopes: frozenset[str],
    now: float | None = None,
) -> tuple[str, int]:
    issued = int(now if now is not None else time.time())
    exp = issued + ttl_seconds
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": client_id,
        "client_id": client_id,  # RFC 9068 claim names
        "scope": " ".join(sorted(scopes)),
        "tid": tenant_id,
        "tsc": tenant_schema,
        "iat": issued,
        "exp": exp,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), exp


def decode_bearer_token(
    token: str, *, secret: str, issuer: str, audience: str
) -> AccessClaims | ClientClaims:
    """A user's access token or a partner app's, told apart by the `client_id` claim."""
    try:
        data = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"require": ["exp", "iss", "aud", "sub", "iat"]},
        )
        if "client_id" not in data:
            return AccessClaims(
                user_id=int(data["sub"]),
                tenant_id=int(data["tid"]),
                tenant_schema=str(data["tsc"]),
                role=str(data["role"]),
                expires_at=int(data["exp"]),
                session_version=int(data.get("sv", 0)),
            )
        return ClientClaims(
            client_id=str(data["client_id"]),
            tenant_id=int(data["tid"]),
            tenant_schema=str(data["tsc"]),
            scopes=frozenset(str(data["scope"]).split()),
            expires_at=int(data["exp"]),
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("access token expired") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken("invalid access token") from exc


def new_refresh_token() -> tuple[str, str]:
    """Return (token shown once to the client, SHA-256 hex stored in the database)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
