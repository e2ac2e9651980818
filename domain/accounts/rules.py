"""Pure rules for accounts: roles, scopes, input checks."""

from __future__ import annotations

import re
import unicodedata

from domain.errors import FieldError

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"influencers:read", "posts:read", "collection:read"}),
    "analyst": frozenset(
        {
            "influencers:read",
            "influencers:write",
            "posts:read",
            "posts:write",
            "collection:read",
            "collection:write",
            "analytics:read",
            "analytics:write",
        }
    ),
}
ROLE_SCOPES["admin"] = ROLE_SCOPES["analyst"] | {
    "members:manage",
    "tenant:manage",
    "apikeys:manage",  # API keys and partner apps (domain/apikeys)
}
ROLE_SCOPES["owner"] = ROLE_SCOPES["admin"] | {"billing:manage"}

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_]{0,46}[a-z0-9])?$")
MIN_PASSWORD = 10


def scopes_for_role(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> FieldError | None:
    if not EMAIL_RE.fullmatch(email) or len(email) > 320:
        return FieldError("email", "not a valid e-mail address")
    return None


def check_password(password: str) -> FieldError | None:
    if len(password) < MIN_PASSWORD:
        return FieldError("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        return FieldError("password", "must be at most 1024 characters")
    return None


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    return slug[:40] or "tenant"


def check_slug(slug: str) -> FieldError | None:
    if not SLUG_RE.fullmatch(slug):
        return FieldError(
            "tenantSlug", "2-48 chars of a-z, 0-9 and _, starting and ending with a letter or digit"
        )
    return None
