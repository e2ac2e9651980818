"""Schema discipline: `trendscope schema-check` finds breaking changes against the released SDL
(schema/released.graphql, what CI checks) or a git ref, and lets through only those the changelog
acknowledges."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.graphql.executable import sdl
from api.schema_check import RELEASED_PATH, acknowledged, acknowledgement, check_schema

OLD = """
type Query {
  influencer(id: ID!): Influencer
}

type Influencer {
  id: ID!
  displayName: String!
  totalFollowers: Int!
  postCount: Int!
  score: Float
  legacyScore: Float @deprecated(reason: "Use score")
}
"""


def test_removing_a_field_is_breaking() -> None:
    new = OLD.replace("  displayName: String!\n", "")
    report = check_schema(OLD, new)
    assert [c.type.name for c in report.breaking] == ["FIELD_REMOVED"]
    assert "Influencer.displayName" in report.breaking[0].description
    assert not report.ok
    assert report.removed_without_deprecation == ["Influencer.displayName"]


def test_changing_a_type_is_breaking() -> None:
    new = OLD.replace("totalFollowers: Int!", "totalFollowers: String!")
    report = check_schema(OLD, new)
    assert [c.type.name for c in report.breaking] == ["FIELD_CHANGED_KIND"]
    assert not report.ok


def test_adding_a_field_is_not_breaking() -> None:
    new = OLD.replace("  id: ID!\n", "  id: ID!\n  engagementRate: Float\n")
    report = check_schema(OLD, new)
    assert report.breaking == [] and report.ok


def test_acknowledged_break_passes_and_only_that_one() -> None:
    new = OLD.replace('  legacyScore: Float @deprecated(reason: "Use score")\n', "")
    new = new.replace("totalFollowers: Int!", "totalFollowers: String!")
    report = check_schema(OLD, new)
    removed = next(c for c in report.breaking if c.type.name == "FIELD_REMOVED")
    changelog = (
        "## v2\n\n" + acknowledgement(removed).replace("<why; what", "gone; use score") + "\n"
    )
    report = check_schema(OLD, new, changelog)
    assert [c.type.name for c in report.unacknowledged] == ["FIELD_CHANGED_KIND"]
    assert report.removed_without_deprecation == []  # it was deprecated first
    changelog += "- BREAKING(FIELD_CHANGED_KIND) `Field Influencer.totalFollowers changed type from Int! to String!.` ok\n"
    assert check_schema(OLD, new, changelog).ok


def test_dangerous_changes_are_warnings_not_failures() -> None:
    old = "type Query { platform: Platform }\nenum Platform { INSTAGRAM }"
    new = "type Query { platform: Platform }\nenum Platform { INSTAGRAM TIKTOK }"
    report = check_schema(old, new)
    assert [c.type.name for c in report.dangerous] == ["VALUE_ADDED_TO_ENUM"]
    assert report.ok


def test_the_changelogs_own_example_acknowledges_nothing() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "schema-changelog.md").read_text()
    assert all("legacyScore" not in description for _, description in acknowledged(text))


# --- the CLI against a real git repository ----------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout whose `main` has OLD as schema/schema.graphql."""
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "schema.graphql").write_text(OLD)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "v1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["schema-check", *args])
    return result.exit_code, result.output


def test_cli_fails_on_an_unacknowledged_break_then_passes_once_acknowledged(repo: Path) -> None:
    current = repo / "current.graphql"
    current.write_text(OLD.replace("  displayName: String!\n", ""))
    code, output = run("--current", str(current))
    assert code == 1, output
    line = next(x for x in output.splitlines() if x.startswith("- BREAKING(FIELD_REMOVED)"))
    assert "Influencer.displayName was removed" in line
    assert "was removed without being deprecated" in output
    (repo / "docs").mkdir()
    (repo / "docs" / "schema-changelog.md").write_text(f"## v2\n\n{line}\n")
    code, output = run("--current", str(current))
    assert code == 0, output
    assert "1 acknowledged breaking" in output


def test_cli_compares_against_the_given_ref(repo: Path) -> None:
    (repo / "schema" / "schema.graphql").write_text(
        OLD.replace("  id: ID!\n", "  id: ID!\n  x: Int\n")
    )
    git(repo, "checkout", "-q", "-b", "feature")
    git(repo, "commit", "-q", "-am", "add x")
    current = repo / "current.graphql"
    current.write_text(OLD)  # x removed again: breaking against `feature`, not against `main`
    assert run("--current", str(current))[0] == 0
    code, output = run("--against", "feature", "--current", str(current))
    assert code == 1 and "Influencer.x was removed" in output


def test_cli_skips_outside_git_or_without_the_ref(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    code, output = run("--against", "no-such-ref")
    assert code == 0 and "skipped" in output
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    code, output = run()
    assert code == 0 and "skipped" in output


# --- the CLI against the released SDL (what .ci/run runs) ------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_cli_fails_on_a_break_against_the_released_file_unless_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No git involved: the gate holds on a clone of main, where `--against main` compares
    main with itself."""
    monkeypatch.chdir(tmp_path)
    released, current = tmp_path / "released.graphql", tmp_path / "current.graphql"
    released.write_text(OLD)
    current.write_text(OLD.replace("  displayName: String!\n", ""))
    code, output = run("--against-file", str(released), "--current", str(current))
    assert code == 1, output
    line = next(x for x in output.splitlines() if x.startswith("- BREAKING(FIELD_REMOVED)"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "schema-changelog.md").write_text(f"## Unreleased\n\n{line}\n")
    code, output = run("--against-file", str(released), "--current", str(current))
    assert code == 0 and "1 acknowledged breaking" in output, output


def test_cli_fails_when_the_released_file_is_missing(tmp_path: Path) -> None:
    code, output = run("--against-file", str(tmp_path / "nope.graphql"))
    assert code == 2 and "no released schema" in output and "skipped" not in output


def test_schema_release_records_the_codes_sdl_and_a_later_break_fails(tmp_path: Path) -> None:
    released = tmp_path / "released.graphql"
    result = CliRunner().invoke(app, ["schema-release", "--path", str(released)])
    assert result.exit_code == 0, result.output
    assert released.read_text() == sdl()
    empty = tmp_path / "changelog.md"
    empty.write_text("")
    assert run("--against-file", str(released), "--changelog", str(empty))[0] == 0
    # the real schema with a field removed: breaking against what was released
    assert "  totalFollowers: Int!\n" in sdl()
    current = tmp_path / "current.graphql"
    current.write_text(sdl().replace("  totalFollowers: Int!\n", "", 1))
    code, output = run(
        "--against-file", str(released), "--changelog", str(empty), "--current", str(current)
    )
    assert code == 1 and "totalFollowers was removed" in output, output


def test_the_repositorys_gate_passes_against_the_released_sdl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What .ci/run runs: breaking changes since the release are all acknowledged."""
    monkeypatch.chdir(ROOT)
    code, output = run("--against-file", str(RELEASED_PATH))
    assert code == 0, output


def test_the_codes_schema_has_no_unacknowledged_break_against_the_checked_in_file() -> None:
    """What CI's schema-check sees on a branch without schema changes."""
    path = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
    assert check_schema(path.read_text(), sdl()).breaking == []


def test_every_deprecation_in_the_schema_gives_a_reason() -> None:
    """`@deprecated(reason: ...)` says what to use instead; graphql-core's default reason
    ("No longer supported") does not."""
    from graphql import DEFAULT_DEPRECATION_REASON, build_schema, is_enum_type

    schema = build_schema(sdl())
    reasons = []
    for gql_type in schema.type_map.values():
        for f in getattr(gql_type, "fields", {}).values():
            if getattr(f, "deprecation_reason", None) is not None:
                reasons.append(f.deprecation_reason)
        if is_enum_type(gql_type):
            for v in gql_type.values.values():  # type: ignore[attr-defined]
                if v.deprecation_reason is not None:
                    reasons.append(v.deprecation_reason)
    assert all(r.strip() and r != DEFAULT_DEPRECATION_REASON for r in reasons), reasons
