"""Pure rules for API keys and partner apps: secret formats, hashing, scope checks."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

from domain.accounts.rules import ROLE_SCOPES
from domain.errors import FieldError

KEY_PREFIX = "tsk"  # API keys: tsk_<prefix>_<secret>
CLIENT_ID_PREFIX = "tsp"  # partner apps: client id tsp_<hex>, secret tss_<secret>
CLIENT_SECRET_PREFIX = "tss"
_KEY_RE = re.compile(r"^tsk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
MAX_NAME = 100
# Every scope a role can hold: a credential can be given nothing else.
KNOWN_SCOPES: frozenset[str] = frozenset().union(*ROLE_SCOPES.values())


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """Return (the key, shown once; its visible prefix; the SHA-256 hex stored)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, sha256_hex(key)


def parse_api_key(token: str) -> str | None:
    """The prefix of something shaped like one of our API keys, else None."""
    match = _KEY_RE.fullmatch(token)
    return match.group(1) if match else None


def looks_like_api_key(token: str) -> bool:
    return token.startswith(f"{KEY_PREFIX}_")


def new_client_credentials() -> tuple[str, str, str]:
    """Return (client id, client secret shown once, the secret's SHA-256 hex stored)."""
    client_id = f"{CLIENT_ID_PREFIX}_{secrets.token_hex(10)}"
    secret = f"{CLIENT_SECRET_PREFIX}_{secrets.token_urlsafe(32)}"
    return client_id, secret, sha256_hex(secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return secrets.compare_digest(sha256_hex(secret), stored_hash)


def check_name(name: str) -> FieldError | None:
    if not name.strip():
        return FieldError("name", "must not be empty")
    if len(name.strip()) > MAX_NAME:
        return FieldError("name", f"must be at most {MAX_NAME} characters")
    return None


def check_scopes(wanted: Iterable[str], granted: frozenset[str]) -> FieldError | None:
    """A credential's scopes: known, not empty, and a subset of its creator's scopes."""
    scopes = set(wanted)
    if not scopes:
        return FieldError("scopes", "give at least one scope")
    unknown = sorted(scopes - KNOWN_SCOPES)
    if unknown:
        return FieldError("scopes", f"unknown scopes: {', '.join(unknown)}")
    beyond = sorted(scopes - granted)
    if beyond:
        return FieldError("scopes", f"you do not hold: {', '.join(beyond)}")
    return None


def parse_scope_param(scope: str | None) -> frozenset[str] | None:
    """An OAuth `scope` parameter (RFC 6749 §3.3: space-delimited); None when absent."""
    if scope is None or not scope.strip():
        return None
    return frozenset(s for s in scope.split(" ") if s)
