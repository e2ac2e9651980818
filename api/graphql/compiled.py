"""Hot queries compiled into one SQL statement that returns the response's JSON.

The way Hasura and PostGraphile serve lists: instead of resolving ~1,500 fields one by one
through graphql-core (the bulk of a 50-item nested query's CPU), a query whose shape is in the
supported subset becomes one `SELECT` that PostgreSQL answers with the `data` JSON already
nested, ordered and encoded like the resolvers' answer (Relay ids, enum names, cursors).

Supported, and everything else runs the normal way (`compile_query` returns None):

- a query operation with one root field, `influencers(first: N)` (literal or variable; the
  default sort, no filter, no `after`), selecting `edges { cursor node { ... } }` and
  `pageInfo`;
- on `Influencer`: its scalar fields (not the timestamps) and `accounts { ... }`;
- on `InfluencerAccount`: its scalar fields and `recentPosts(limit: N) { ... }`;
- on `Post`: its scalar fields except the lists and timestamps, and `commentsCount`;
- aliases and `__typename`; no fragments, no directives.

The statement runs in a `tenant_tx` of the caller's tenant schema like any other read, after
the same parse, validation and permission checks the resolvers would make: the plan's `scopes`
are those of every type it reads (schema.permissions.TYPE_SCOPES: `posts:read` once it selects
`recentPosts`), and a caller lacking one is answered by the resolvers, with their errors; a value
the resolver would refuse (`first` out of range) falls back so that the error is the usual one.
Compiled plans are cached per query text. `CompiledQueries` (below) is the schema extension
that answers with them. It runs SQL, so it lives with the execution pipeline, not in `schema/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from schema.permissions import TYPE_SCOPES
from tenants.tx import tenant_tx


def _gid(type_name: str) -> Callable[[str], str]:
    # Strawberry's relay id: base64("<Type>:<id>"); short, so PostgreSQL adds no line breaks.
    return lambda t: f"encode(convert_to('{type_name}:' || {t}.id::text, 'UTF8'), 'base64')"


def _col(column: str) -> Callable[[str], str]:
    return lambda t: f"{t}.{column}"


def _enum(column: str) -> Callable[[str], str]:
    return lambda t: f"upper({t}.{column})"  # Platform: the enum's name is its value upper-cased


INFLUENCER: dict[str, Callable[[str], str]] = {
    "id": _gid("Influencer"),
    "displayName": _col("display_name"),
    "category": _col("category"),
    "country": _col("country"),
    "notes": _col("notes"),
    "totalFollowers": _col("total_followers"),
}
ACCOUNT: dict[str, Callable[[str], str]] = {
    "id": _gid("InfluencerAccount"),
    "platform": _enum("platform"),
    "handle": _col("handle"),
    "externalId": _col("external_id"),
    "followers": _col("followers"),
    "verified": _col("verified"),
    "profileUrl": _col("profile_url"),
}
POST: dict[str, Callable[[str], str]] = {
    "id": _gid("Post"),
    "platform": _enum("platform"),
    "externalId": _col("external_id"),
    "url": _col("url"),
    "text": _col("text"),
    "likes": _col("likes"),
    "comments": _col("comments"),
    "shares": _col("shares"),
    "views": _col("views"),
    "commentsCount": lambda t: f"(SELECT count(*) FROM comment c WHERE c.post_id = {t}.id)",
}
# domain.pagination.encode_cursor("created", id, id) for the default sort, in SQL.
_CURSOR = (
    "rtrim(translate(encode(convert_to('[\"created\",' || {t}.id || ',' || {t}.id || ']', "
    "'UTF8'), 'base64'), '+/', '-_'), '=')"
)


class Unsupported(Exception):
    """The query is outside the compiled subset: run it the normal way."""


class NotAQuery(Unsupported):
    pass


@dataclass(frozen=True)
class Param:
    """A statement parameter: a literal, or a variable with its default."""

    literal: int | None = None
    variable: str | None = None
    default: int | None = None

    def value(self, variables: Mapping[str, Any]) -> int | None:
        if self.variable is None:
            return self.literal
        value = variables.get(self.variable, self.default)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class CompiledQuery:
    root_key: str  # the response key of the root field (its alias or name)
    sql: str
    first: Param
    limits: tuple[Param, ...]  # recentPosts limits, $2, $3, ...
    scopes: frozenset[str] = frozenset()  # the scopes of the types it reads

    def parameters(self, variables: Mapping[str, Any]) -> list[int] | None:
        """The statement's arguments, or None when a value is one the resolver refuses (the
        normal path then answers with its error)."""
        first = self.first.value(variables)
        if first is None or not 0 <= first <= MAX_PAGE_SIZE:
            return None
        out = [first]
        for p in self.limits:
            limit = p.value(variables)
            if limit is None:
                return None
            out.append(max(0, min(limit, 50)))
        return out


class _Compiler:
    def __init__(self, defaults: Mapping[str, Any]) -> None:
        self.defaults = defaults
        self.limits: list[Param] = []
        self.types: set[str] = set()  # the object types the statement reads

    def param(self, field: FieldNode, name: str, default: int) -> Param:
        args = {a.name.value: a.value for a in field.arguments or ()}
        extra = set(args) - {name}
        if extra:
            raise Unsupported(f"argument {sorted(extra)}")
        node = args.get(name)
        if node is None:
            return Param(literal=default)
        if isinstance(node, IntValueNode):
            return Param(literal=int(node.value))
        if isinstance(node, VariableNode):
            var = node.name.value
            fallback = self.defaults.get(var, default)
            return Param(variable=var, default=fallback)
        raise Unsupported("argument value")

    def fields(self, selection: SelectionSetNode | None) -> list[FieldNode]:
        if selection is None:
            raise Unsupported("no selection")
        out = []
        for sel in selection.selections:
            if not isinstance(sel, FieldNode) or sel.directives:
                raise Unsupported("fragment or directive")
            out.append(sel)
        return out

    def obj(
        self,
        selection: SelectionSetNode | None,
        type_name: str,
        columns: Mapping[str, Callable[[str], str]],
        t: str,
        relation: Callable[[FieldNode, str], str] | None = None,
    ) -> str:
        self.types.add(type_name)
        pairs = []
        for f in self.fields(selection):
            key = (f.alias or f.name).value
            name = f.name.value
            if name == "__typename":
                expr = f"'{type_name}'"
            elif name in columns:
                if f.arguments or f.selection_set:
                    raise Unsupported(name)
                expr = columns[name](t)
            elif relation is not None:
                expr = relation(f, t)
            else:
                raise Unsupported(f"{type_name}.{name}")
            pairs.append(f"'{key}', {expr}")
        if not pairs or len(pairs) > 50:  # json_build_object takes at most 100 arguments
            raise Unsupported("selection size")
        return "json_build_object(" + ", ".join(pairs) + ")"

    def post(self, f: FieldNode, parent: str) -> str:
        raise Unsupported(f"Post.{f.name.value}")

    def account_relation(self, f: FieldNode, a: str) -> str:
        if f.name.value != "recentPosts":
            raise Unsupported(f"InfluencerAccount.{f.name.value}")
        self.limits.append(self.param(f, "limit", 10))
        n = len(self.limits) + 1  # $1 is `first`
        node = self.obj(f.selection_set, "Post", POST, "p", self.post)
        return (
            f"(SELECT coalesce(json_agg({node} ORDER BY p.published_at DESC, p.id DESC), "
            f"'[]'::json) FROM (SELECT * FROM post WHERE account_id = {a}.id "
            f"ORDER BY published_at DESC, id DESC LIMIT ${n}) p)"
        )

    def influencer_relation(self, f: FieldNode, i: str) -> str:
        if f.name.value != "accounts" or f.arguments:
            raise Unsupported(f"Influencer.{f.name.value}")
        node = self.obj(f.selection_set, "InfluencerAccount", ACCOUNT, "a", self.account_relation)
        return (
            f"(SELECT coalesce(json_agg({node} ORDER BY a.id), '[]'::json) "
            f"FROM influencer_account a WHERE a.influencer_id = {i}.id)"
        )

    def edge(self, f: FieldNode, i: str) -> str:
        if f.name.value == "node" and not f.arguments:
            return self.obj(f.selection_set, "Influencer", INFLUENCER, i, self.influencer_relation)
        raise Unsupported(f"InfluencerEdge.{f.name.value}")

    def page_info(self, f: FieldNode) -> str:
        # The page is the rows with rn <= $1; the query reads one more to know hasNextPage.
        page = "FILTER (WHERE i.rn <= $1)"
        cursor = _CURSOR.format(t="i")
        columns = {
            "hasNextPage": lambda t: "count(*) > $1",
            "hasPreviousPage": lambda t: "false",  # no `after` in the compiled subset
            "startCursor": lambda t: f"(array_agg({cursor} ORDER BY i.id DESC) {page})[1]",
            "endCursor": lambda t: f"(array_agg({cursor} ORDER BY i.id ASC) {page})[1]",
        }
        return self.obj(f.selection_set, "PageInfo", columns, "i")

    def connection(self, root: FieldNode) -> str:
        pairs = []
        for f in self.fields(root.selection_set):
            key = (f.alias or f.name).value
            name = f.name.value
            if name == "__typename":
                pairs.append(f"'{key}', 'InfluencerConnection'")
            elif name == "pageInfo" and not f.arguments:
                pairs.append(f"'{key}', {self.page_info(f)}")
            elif name == "edges" and not f.arguments:
                edge = self.obj(
                    f.selection_set,
                    "InfluencerEdge",
                    {"cursor": lambda t: _CURSOR.format(t=t)},
                    "i",
                    self.edge,
                )
                pairs.append(
                    f"'{key}', coalesce(json_agg({edge} ORDER BY i.id DESC) "
                    "FILTER (WHERE i.rn <= $1), '[]'::json)"
                )
            else:
                raise Unsupported(f"InfluencerConnection.{name}")
        if not pairs:
            raise Unsupported("empty connection")
        return (
            "SELECT json_build_object(" + ", ".join(pairs) + ")::text FROM ("
            "SELECT *, row_number() OVER (ORDER BY id DESC) AS rn FROM influencer "
            "ORDER BY id DESC LIMIT $1::int + 1) i"
        )


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != len(document.definitions):
        raise Unsupported("fragment definitions")
    for op in ops:
        if name is None and len(ops) == 1:
            return op
        if op.name is not None and op.name.value == name:
            return op
    raise Unsupported("operation not found")


def _compile(document: DocumentNode, operation_name: str | None) -> CompiledQuery:
    op = _operation(document, operation_name)
    if op.operation != OperationType.QUERY:
        raise NotAQuery(op.operation.value)
    if op.directives:
        raise Unsupported("not a plain query")
    defaults: dict[str, Any] = {}
    for var in op.variable_definitions or ():
        if var.directives:
            raise Unsupported("variable directives")
        if isinstance(var.default_value, IntValueNode):
            defaults[var.variable.name.value] = int(var.default_value.value)
    compiler = _Compiler(defaults)
    roots = compiler.fields(op.selection_set)
    if len(roots) != 1 or roots[0].name.value != "influencers":
        raise Unsupported("root field")
    root = roots[0]
    first = compiler.param(root, "first", DEFAULT_PAGE_SIZE)
    sql = compiler.connection(root)
    scopes = frozenset(
        {"influencers:read"} | {TYPE_SCOPES[t] for t in compiler.types if t in TYPE_SCOPES}
    )
    return CompiledQuery(
        (root.alias or root.name).value, sql, first, tuple(compiler.limits), scopes
    )


_plans: dict[tuple[str, str | None], CompiledQuery | None] = {}
_MAX_PLANS = 1000


def compile_query(
    query: str | None, operation_name: str | None, document: DocumentNode | None
) -> CompiledQuery | None:
    """The compiled form of this (parsed and validated) query, or None; cached per text."""
    if query is None or document is None or len(query) > 10_000:
        return None
    key = (query, operation_name)
    try:
        return _plans[key]
    except KeyError:
        pass
    try:
        plan: CompiledQuery | None = _compile(document, operation_name)
    except NotAQuery:
        return None  # mutations and subscriptions: not cached, they never compile
    except Unsupported:
        plan = None
    if len(_plans) >= _MAX_PLANS:
        _plans.clear()
    _plans[key] = plan
    return plan


class CompiledQueries(SchemaExtension):
    """Answer a query of the compiled subset with one SQL statement in a short `tenant_tx`:
    setting the result in `on_execute` makes Strawberry skip graphql-core's execution."""

    compiled = True  # False: every query runs through the resolvers (tests compare both)

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        tenant_schema = ec.context.tenant_schema
        if tenant_schema is not None and ec.result is None and self.compiled:
            # ec.result set: another extension answered already (e.g. a limit)
            await self._run(ec, tenant_schema)
        yield

    @staticmethod
    async def _run(ec: ExecutionContext, tenant_schema: str) -> None:
        plan = compile_query(ec.query, ec.operation_name, ec.graphql_document)
        if plan is None:
            return
        principal = ec.context.principal
        if principal is None or not plan.scopes <= principal.scopes:
            return  # the resolvers' permission checks answer
        params = plan.parameters(ec.variables or {})
        if params is None:
            return
        async with tenant_tx(tenant_schema) as tx:
            _, rows = await tx.conn.execute_query(plan.sql, params)
        ec.result = ExecutionResult(data={plan.root_key: orjson.loads(rows[0][0])})
