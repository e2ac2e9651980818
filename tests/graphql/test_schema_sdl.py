"""The checked-in SDL matches the code (run `trendscope export-schema` after a change)."""

from pathlib import Path

from api.graphql.executable import sdl


def test_schema_graphql_is_current() -> None:
    path = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
    assert path.read_text() == sdl(), "schema/schema.graphql is stale: run trendscope export-schema"
