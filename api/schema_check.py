"""Schema discipline: compare the GraphQL schema with the last released SDL.

CI compares with `schema/released.graphql` (`trendscope schema-check --against-file`), the SDL
clients were last given, updated only by the release step (`trendscope schema-release`,
docs/schema-changelog.md). Comparing with a git ref (`--against main`) cannot guard CI: CI
runs on a clone of main, where main is compared with itself.

graphql-core's `find_breaking_changes` decides what breaks clients (a removed field or type,
a changed type, a new required argument, ...); `find_dangerous_changes` gives warnings (a new
enum value, a changed default, ...). A breaking change passes only when
`docs/schema-changelog.md` acknowledges it with a line of this form (the tool prints it):

    - BREAKING(FIELD_REMOVED) `Field Influencer.legacyScore was removed.` why; use `score`

i.e. `BREAKING(<graphql-core BreakingChangeType>)` followed by graphql-core's description in
backticks; the rest of the line is free text. Fields should be deprecated with
`@deprecated(reason: ...)` (Strawberry: `deprecation_reason=`) for a while before removal; the
report says when a removed field was not deprecated on the ref.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from graphql import (
    BreakingChange,
    BreakingChangeType,
    DangerousChange,
    GraphQLSchema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    is_interface_type,
    is_object_type,
)

SCHEMA_PATH = "schema/schema.graphql"
RELEASED_PATH = Path("schema/released.graphql")
CHANGELOG_PATH = Path("docs/schema-changelog.md")

_COORDINATE_RE = re.compile(r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*\b")
_ACK_RE = re.compile(r"BREAKING\((?P<type>[A-Z_]+)\)\s+`(?P<description>[^`]+)`")


@dataclass
class SchemaReport:
    breaking: list[BreakingChange] = field(default_factory=list)
    dangerous: list[DangerousChange] = field(default_factory=list)
    unacknowledged: list[BreakingChange] = field(default_factory=list)
    removed_without_deprecation: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unacknowledged


def acknowledgement(change: BreakingChange) -> str:
    """The changelog line that acknowledges `change` (its reason is left to the author)."""
    return f"- BREAKING({change.type.name}) `{change.description}` <why; what to use instead>"


def acknowledged(changelog: str) -> set[tuple[str, str]]:
    return {(m["type"], m["description"].strip()) for m in _ACK_RE.finditer(changelog)}


def _deprecated_fields(schema: GraphQLSchema) -> set[str]:
    out: set[str] = set()
    for name, gql_type in schema.type_map.items():
        if is_object_type(gql_type) or is_interface_type(gql_type):
            for field_name, f in gql_type.fields.items():  # type: ignore[attr-defined]
                if f.deprecation_reason is not None:
                    out.add(f"{name}.{field_name}")
    return out


def check_schema(old_sdl: str, new_sdl: str, changelog: str = "") -> SchemaReport:
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    report = SchemaReport(
        breaking=find_breaking_changes(old, new), dangerous=find_dangerous_changes(old, new)
    )
    acks = acknowledged(changelog)
    deprecated = _deprecated_fields(old)
    for change in report.breaking:
        if (change.type.name, change.description.strip()) not in acks:
            report.unacknowledged.append(change)
        if change.type == BreakingChangeType.FIELD_REMOVED:
            match = _COORDINATE_RE.search(change.description)
            if match and match[0] not in deprecated:
                report.removed_without_deprecation.append(match[0])
    return report


class SchemaUnavailable(Exception):
    """The ref's schema cannot be read (not a git checkout, no such ref, no such file)."""


def schema_at(ref: str, path: str = SCHEMA_PATH, cwd: Path | None = None) -> str:
    """`git show <ref>:<path>`."""
    try:
        result = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=cwd, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise SchemaUnavailable("git is not installed") from exc
    if result.returncode != 0:
        raise SchemaUnavailable(result.stderr.strip() or f"git show {ref}:{path} failed")
    return result.stdout
