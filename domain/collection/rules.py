"""Parsing and checking import files (CSV or JSONL). Pure: bytes in, rows and errors out.

One row per post, with these keys/columns (see docs/import-format.md):
platform, handle, external_id, url, text, published_at, likes, comments, shares, views,
hashtags, mentions. Hashtags and mentions are lists in JSONL and space/comma separated in
CSV; when absent they are taken from the text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.errors import FieldError, ValidationFailed
from domain.influencers.models import PLATFORMS

REQUIRED = ("platform", "handle", "external_id", "published_at")
COUNTS = ("likes", "comments", "shares", "views")
FORMATS = ("csv", "jsonl")
HASHTAG_RE = re.compile(r"#(\w{1,100})", re.UNICODE)
MENTION_RE = re.compile(r"@([A-Za-z0-9._]{1,100})")
MAX_ROW_ERRORS = 100


@dataclass(frozen=True)
class ImportRow:
    index: int
    platform: str
    handle: str
    external_id: str
    url: str
    text: str
    published_at: datetime
    likes: int
    comments: int
    shares: int
    views: int
    hashtags: tuple[str, ...]
    mentions: tuple[str, ...]
    raw: dict[str, Any]


@dataclass(frozen=True)
class RowError:
    index: int
    message: str


def detect_format(filename: str, content: bytes) -> str:
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    head = content.lstrip()[:1]
    if head == b"{":
        return "jsonl"
    raise ValidationFailed(FieldError("file", "unknown format: upload a .csv or .jsonl file"))


def _records(fmt: str, text: str) -> list[dict[str, Any] | str]:
    """Each line/record as a dict, or an error message for a record that is not one."""
    if fmt == "jsonl":
        out: list[dict[str, Any] | str] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append(f"not valid JSON: {exc.msg}")
                continue
            out.append(value if isinstance(value, dict) else "a JSON object is expected")
        return out
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(FieldError("file", f"CSV header lacks {', '.join(missing)}"))
    return [dict(r) for r in reader]


def _tags(value: Any, pattern: re.Pattern[str], text: str, strip: str) -> tuple[str, ...]:
    if value in (None, ""):
        items = pattern.findall(text)
    elif isinstance(value, list):
        items = [str(v) for v in value]
    else:
        items = re.split(r"[\s,;]+", str(value))
    seen: dict[str, None] = {}
    for item in items:
        tag = item.strip().lstrip(strip).lower()
        if tag:
            seen.setdefault(tag[:100], None)
    return tuple(seen)


def _int(value: Any, name: str) -> int:
    if value in (None, ""):
        return 0
    try:
        number = int(float(value)) if isinstance(value, str) and "." in value else int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a whole number") from exc
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("published_at is required (ISO 8601)")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("published_at is not an ISO 8601 date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_row(index: int, rec: dict[str, Any]) -> ImportRow:
    for key in REQUIRED:
        if rec.get(key) in (None, ""):
            raise ValueError(f"{key} is required")
    platform = str(rec["platform"]).strip().lower()
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}")
    text = str(rec.get("text") or "")
    external_id = str(rec["external_id"]).strip()
    if len(external_id) > 100:
        raise ValueError("external_id is longer than 100 characters")
    return ImportRow(
        index=index,
        platform=platform,
        handle=str(rec["handle"]).strip().lstrip("@").lower(),
        external_id=external_id,
        url=str(rec.get("url") or "")[:1000],
        text=text,
        published_at=_datetime(rec["published_at"]),
        likes=_int(rec.get("likes"), "likes"),
        comments=_int(rec.get("comments"), "comments"),
        shares=_int(rec.get("shares"), "shares"),
        views=_int(rec.get("views"), "views"),
        hashtags=_tags(rec.get("hashtags"), HASHTAG_RE, text, "#"),
        mentions=_tags(rec.get("mentions"), MENTION_RE, text, "@"),
        raw=rec,
    )


def parse_import(filename: str, content: bytes) -> tuple[str, list[ImportRow | RowError]]:
    """Parse a whole file. File-level problems raise ValidationFailed; row problems are
    returned in place as RowError so the row numbering (the resume cursor) stays stable."""
    fmt = detect_format(filename, content)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(FieldError("file", "the file is not UTF-8 text")) from exc
    records = _records(fmt, text)
    if not records:
        raise ValidationFailed(FieldError("file", "the file holds no rows"))
    out: list[ImportRow | RowError] = []
    for index, rec in enumerate(records):
        if isinstance(rec, str):
            out.append(RowError(index, rec))
            continue
        try:
            out.append(parse_row(index, rec))
        except ValueError as exc:
            out.append(RowError(index, str(exc)))
    return fmt, out
