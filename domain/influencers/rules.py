"""Pure input rules for influencers and accounts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import FieldError
from domain.influencers.models import PLATFORMS

HANDLE_RE = re.compile(r"^[A-Za-z0-9._\-]{1,100}$")


@dataclass(frozen=True)
class AccountInput:
    platform: str
    handle: str
    external_id: str | None = None
    followers: int = 0
    verified: bool = False
    profile_url: str | None = None


@dataclass(frozen=True)
class InfluencerInput:
    display_name: str
    category: str | None = None
    country: str | None = None
    notes: str = ""
    accounts: tuple[AccountInput, ...] = ()


def normalize_handle(handle: str) -> str:
    return handle.strip().lstrip("@").lower()


def check_account(acc: AccountInput, index: int) -> list[FieldError]:
    errors = []
    prefix = f"accounts[{index}]"
    if acc.platform not in PLATFORMS:
        errors.append(FieldError(f"{prefix}.platform", f"must be one of {', '.join(PLATFORMS)}"))
    if not HANDLE_RE.fullmatch(normalize_handle(acc.handle)):
        errors.append(FieldError(f"{prefix}.handle", "1-100 letters, digits, '.', '_' or '-'"))
    if acc.followers < 0:
        errors.append(FieldError(f"{prefix}.followers", "must not be negative"))
    return errors


def check_influencer(data: InfluencerInput) -> list[FieldError]:
    errors = []
    if not data.display_name.strip():
        errors.append(FieldError("displayName", "must not be empty"))
    if len(data.display_name) > 200:
        errors.append(FieldError("displayName", "at most 200 characters"))
    if data.category is not None and len(data.category) > 100:
        errors.append(FieldError("category", "at most 100 characters"))
    if data.country is not None and len(data.country) > 100:
        errors.append(FieldError("country", "at most 100 characters"))
    if len(data.notes) > 10_000:
        errors.append(FieldError("notes", "at most 10,000 characters"))
    seen = set()
    for i, acc in enumerate(data.accounts):
        errors += check_account(acc, i)
        key = (acc.platform, normalize_handle(acc.handle))
        if key in seen:
            errors.append(FieldError(f"accounts[{i}]", "duplicate platform and handle"))
        seen.add(key)
    return errors
