"""One home per feature (issue 13, item 5): a root field lives in the context of the type it
returns, and each context declares its own dataloaders, so a newcomer finds a field's code
from its type's folder and a loader from its context's."""

from __future__ import annotations

import inspect

from graphql import GraphQLObjectType, get_named_type

from api.graphql.executable import schema
from schema.dataloaders import Loaders

# Payload unions are declared beside their mutation, so their module says nothing: these are
# pinned by what they create or stream.
PINNED = {"importPosts": "posts", "postAdded": "posts", "tenantTotals": "analytics"}


def _context(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "schema" else None


def _root_fields() -> list[tuple[str, str, str | None]]:
    """(field, resolver's context, returned type's context or None)."""
    gql = schema._schema
    out = []
    for root in (gql.query_type, gql.mutation_type, gql.subscription_type):
        assert isinstance(root, GraphQLObjectType)
        for name, field in root.fields.items():
            definition = field.extensions["strawberry-definition"]
            resolver = definition.base_resolver
            if resolver is None or _context(resolver.wrapped_func.__module__) is None:
                continue  # `node` (Strawberry's own)
            named = get_named_type(field.type)
            type_def = (named.extensions or {}).get("strawberry-definition")
            origin = getattr(type_def, "origin", None)
            returned = _context(origin.__module__) if origin is not None else None
            out.append((name, _context(resolver.wrapped_func.__module__) or "", returned))
    return out


def test_every_root_field_lives_with_the_type_it_returns() -> None:
    fields = _root_fields()
    assert len(fields) > 60  # the three roots were found
    misplaced = [
        (name, home, returned)
        for name, home, returned in fields
        if returned is not None and home != returned
    ]
    assert misplaced == []
    homes = {name: home for name, home, _ in fields}
    assert {name: homes[name] for name in PINNED} == PINNED


def test_each_loader_is_declared_by_exactly_one_context() -> None:
    contexts = [base for base in Loaders.__mro__[1:] if base is not object]
    assert contexts, "Loaders is composed of the contexts' loaders"
    declared: dict[str, str] = {}
    for base in contexts:
        assert base.__module__ == f"schema.{base.__module__.split('.')[1]}.loaders"
        source = inspect.getsource(base.__init__)  # type: ignore[misc]
        for line in source.splitlines():
            line = line.strip()
            if line.startswith("self.") and "=" in line:
                attr = line[5:].split("=")[0].split(":")[0].strip()
                assert attr not in declared, f"{attr} declared twice"
                declared[attr] = base.__module__
    loaders = Loaders("t_homes", cache=False)
    assert set(declared) == {k for k in vars(loaders)}
