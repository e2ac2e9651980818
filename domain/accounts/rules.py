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
    "audit:read",
    "webhooks:manage",
    "apikeys:manage",  # API keys and partner apps (domain/apikeys)
}
ROLE_SCOPES["owner"] = ROLE_SCOPES["admin"] | {"billing:manage"}

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_]{0,46}[a-z0-9])?$")
MIN_PASSWORD = 10


def scopes_for_role(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


# Higher ranks hold every scope of the lower ones (see ROLE_SCOPES).
ROLE_RANK = {"viewer": 1, "analyst": 2, "admin": 3, "owner": 4}


def check_role(role: str, field: str = "role") -> FieldError | None:
    if role not in ROLE_RANK:
        return FieldError(field, f"must be one of {', '.join(ROLE_RANK)}")
    return None


def role_change_refusal(
    actor_role: str, target_role: str | None, new_role: str | None, owners: int
) -> str | None:
    """Why `actor_role` may not move a member from `target_role` to `new_role`, or None.

    `target_role` None: an invitation (nobody holds a role yet); `new_role` None: removal.
    `owners` is how many owners the tenant has now. Rules: only an owner makes or unmakes
    owners; nobody grants a role above their own or touches a member above them; the last
    owner can be neither removed nor demoted.
    """
    actor = ROLE_RANK.get(actor_role, 0)
    if "owner" in (target_role, new_role) and actor_role != "owner":
        return "only an owner can make or unmake owners"
    if new_role is not None and ROLE_RANK[new_role] > actor:
        return f"a {actor_role} cannot grant the {new_role} role"
    if target_role is not None and ROLE_RANK.get(target_role, 0) > actor:
        return f"a {actor_role} cannot change a {target_role}"
    if target_role == "owner" and new_role != "owner" and owners <= 1:
        return "the last owner cannot be removed or demoted"
    return None


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
