"""Abuse limits of the GraphQL API: size, depth, aliases, directives, cost, introspection.

Every limit runs on parse or validation, never per field, and is cached with the document:

- `LimitedParserCache` (Strawberry's `ParserCache`) parses with graphql-core's own lexical
  token, comment and source length limits (TOO_MANY_TOKENS, QUERY_TOO_LONG).
- `LimitedValidationCache` (Strawberry's `ValidationCache`) adds `LimitsRule` (depth, aliases,
  directives) and, in production, the introspection rule to the validation rules, so their
  verdict is cached with the rest of validation; then it prices the operation against the
  caller's ceiling (QUERY_TOO_COSTLY) and puts `{"requested": N, "limit": M}` in the response's
  `extensions.cost`. Pricing is compiled once per document and evaluated per request with
  the request's variables (`first: $n`).

The pricing itself (compiled once per document) is api/graphql/cost.py. Configured in one
place, `Settings.limits` (core/settings.py); see docs/api-limits.md.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import ParserCache, ValidationCache

from api.graphql.cost import batch_budget, cost_limit, operation_cost
from api.graphql.global_ids import global_id_errors
from api.graphql.persisted import PERSISTED_QUERY_NOT_ALLOWED, persisted_queries, sha256_hex
from core.settings import Limits, Settings, get_settings
from tenants.policy import TenantPolicy, policies

# extensions.code of each refusal
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
QUERY_TOO_LONG = "QUERY_TOO_LONG"
TOO_MANY_DIRECTIVES = "TOO_MANY_DIRECTIVES"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
LIMIT_CODES = frozenset(
    {
        QUERY_TOO_DEEP,
        TOO_MANY_ALIASES,
        TOO_MANY_TOKENS,
        QUERY_TOO_LONG,
        TOO_MANY_DIRECTIVES,
        QUERY_TOO_COSTLY,
        INTROSPECTION_DISABLED,
        PERSISTED_QUERY_NOT_ALLOWED,
    }
)


def limit_error(message: str, code: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def settings_of(context: object) -> Settings:
    settings = getattr(context, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


# --- depth, aliases, directives: one pass over the document -----------------------------------


@dataclass(frozen=True)
class _Shape:
    depth: int  # nested object levels, as Strawberry's QueryDepthLimiter counts them
    aliases: int  # counted once per place a fragment is spread (what executes)
    directives: int


def _shape(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    memo: dict[str, _Shape],
    visiting: frozenset[str],
) -> _Shape:
    """Depth, aliases and directives below `selection_set`. Each fragment is measured once
    (memo), so a document cannot make this exponential by spreading fragments in fragments."""
    depth = aliases = directives = 0
    if selection_set is None:
        return _Shape(0, 0, 0)
    for selection in selection_set.selections:
        directives += len(selection.directives or ())
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                aliases += 1
            if selection.selection_set is None:
                continue
            inner = _shape(selection.selection_set, fragments, memo, visiting)
            aliases += inner.aliases
            directives += inner.directives
            if not selection.name.value.startswith("__"):  # introspection is not counted
                depth = max(depth, 1 + inner.depth)
        elif isinstance(selection, InlineFragmentNode):
            inner = _shape(selection.selection_set, fragments, memo, visiting)
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            directives += inner.directives
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visiting:  # reported by the spec's own rules
                continue
            if name not in memo:
                inner = _shape(fragment.selection_set, fragments, memo, visiting | {name})
                memo[name] = _Shape(
                    inner.depth, inner.aliases, inner.directives + len(fragment.directives or ())
                )
            inner = memo[name]
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            directives += inner.directives
    return _Shape(depth, aliases, directives)


def _limits_rule(max_depth: int, max_aliases: int, max_directives: int) -> type[ValidationRule]:
    class LimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            memo: dict[str, _Shape] = {}
            for op in document.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                name = op.name.value if op.name else "anonymous"
                shape = _shape(op.selection_set, fragments, memo, frozenset())
                op_directives = len(op.directives or ()) + sum(
                    len(v.directives or ()) for v in op.variable_definitions or ()
                )
                if shape.depth > max_depth:
                    self.report_error(
                        GraphQLError(
                            f"Operation '{name}' is {shape.depth} levels deep;"
                            f" the limit is {max_depth}.",
                            op,
                            extensions={"code": QUERY_TOO_DEEP, "limit": max_depth},
                        )
                    )
                if shape.aliases > max_aliases:
                    self.report_error(
                        GraphQLError(
                            f"Operation '{name}' uses {shape.aliases} aliases;"
                            f" the limit is {max_aliases}.",
                            op,
                            extensions={"code": TOO_MANY_ALIASES, "limit": max_aliases},
                        )
                    )
                if shape.directives + op_directives > max_directives:
                    self.report_error(
                        GraphQLError(
                            f"Operation '{name}' uses {shape.directives + op_directives}"
                            f" directives; the limit is {max_directives}.",
                            op,
                            extensions={"code": TOO_MANY_DIRECTIVES, "limit": max_directives},
                        )
                    )

    return LimitsRule


class IntrospectionDisabledRule(NoSchemaIntrospectionCustomRule):
    """graphql-core's rule, with a code on its error."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": INTROSPECTION_DISABLED}
        super().report_error(error)


@lru_cache(maxsize=64)
def limit_rules(
    max_depth: int, max_aliases: int, max_directives: int, introspection: bool
) -> tuple[type[ASTValidationRule], ...]:
    """The extra validation rules for these limits: the same classes for the same limits,
    so that they are part of a stable `ValidationCache` key."""
    rules: list[type[ASTValidationRule]] = [_limits_rule(max_depth, max_aliases, max_directives)]
    if not introspection:
        rules.append(IntrospectionDisabledRule)
    return tuple(rules)


def rules_for(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    lim = settings.limits
    return limit_rules(
        lim.max_depth, lim.max_aliases, lim.max_directives, settings.introspection_enabled
    )


# --- the extensions ---------------------------------------------------------------------------


_TOKEN_LIMIT = re.compile(r"contains more than \d+ (tokens|comments|code points)")
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


class LimitedParserCache(ParserCache):
    """`ParserCache` with graphql-core's parser limits; their errors get a code."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        lim = settings_of(ec.context).limits
        options: dict[str, Any] = ec.parse_options  # type: ignore[assignment]
        options["max_lexical_tokens"] = lim.max_tokens
        options["max_comments"] = lim.max_tokens
        options["max_source_length"] = lim.max_query_length
        try:
            ec.graphql_document = self.cached_parse_document(ec.query, **options)
        except GraphQLSyntaxError:
            # Left to Strawberry's own parse, with the same options, hence the same error:
            # Strawberry raises it inside the operation, where the error masking gives it its
            # code (`coded_syntax_error`). Raised from here it skipped every extension's
            # on_operation: an uncoded error, and /metrics never saw the request.
            pass
        yield


def coded_syntax_error(exc: GraphQLSyntaxError, lim: Limits) -> GraphQLError:
    """A parse error with its code: a parser limit's (TOO_MANY_TOKENS, QUERY_TOO_LONG, with
    the limit) or GRAPHQL_PARSE_FAILED."""
    match = _TOKEN_LIMIT.search(exc.message)
    if match is None:
        return GraphQLError(
            exc.message,
            source=exc.source,
            positions=exc.positions,
            extensions={**(exc.extensions or {}), "code": GRAPHQL_PARSE_FAILED},
        )
    too_long = match.group(1) == "code points"
    return limit_error(
        exc.message.removeprefix("Syntax Error: "),
        QUERY_TOO_LONG if too_long else TOO_MANY_TOKENS,
        limit=lim.max_query_length if too_long else lim.max_tokens,
    )


class LimitedValidationCache(ValidationCache):
    """`ValidationCache` plus the limit rules, the cost ceiling and `extensions.cost`.
    (Suggestions are hidden with the error masking, `api/graphql/masking.py`.)"""

    cost: dict[str, int] | None = None

    # Async (Strawberry runs async hooks): the tenant's plan may need a database read.
    async def on_validate(self) -> AsyncIterator[None]:  # type: ignore[override]
        ec = self.execution_context
        settings = settings_of(ec.context)
        policy = await _policy_of(ec.context, settings)
        if policy is not None and policy.persisted_queries_only:
            # Enforced here as well as in GraphQLApp (which turns hashes into documents), so
            # that no transport (websocket subscriptions included) gets around the allow-list.
            if not await _allowed(policy.tenant_id, ec.query, settings):
                ec.pre_execution_errors = [
                    limit_error(
                        "This query is not on the tenant's allow-list.",
                        PERSISTED_QUERY_NOT_ALLOWED,
                    )
                ]
                yield
                return
        ec.validation_rules = (*ec.validation_rules, *rules_for(settings))
        assert ec.graphql_document is not None
        errors: list[GraphQLError] = list(  # a copy: the cached list is shared
            self.cached_validate_document(
                ec.schema._schema, ec.graphql_document, ec.validation_rules
            )
        )
        # Priced even when validation failed (a depth or alias refusal, an unknown field), so
        # that every answer to a parsed document carries `extensions.cost`, as documented.
        requested = operation_cost(
            ec.schema._schema,
            ec.graphql_document,
            query=ec.query,
            operation_name=ec.operation_name,
            variables=ec.variables,
            limits=settings.limits,
        )
        limit = cost_limit(settings.limits, policy.plan if policy else None)
        self.cost = {"requested": requested, "limit": limit}
        if not errors:
            budget = batch_budget.get()
            total = requested + (budget.spent if budget is not None else 0)
            if budget is not None:
                self.cost["batchTotal"] = total
            if total > limit:
                within = (
                    "" if budget is None else f" (with the batch's earlier operations: {total})"
                )
                errors = [
                    limit_error(
                        f"The query costs {requested}{within}; the limit is {limit}. Ask for"
                        " fewer items (first/limit) or fewer nested lists.",
                        QUERY_TOO_COSTLY,
                        cost=self.cost,
                    )
                ]
            elif budget is not None:
                budget.spent = total
        if not errors:  # a value that is no global id: the client's input, refused like one
            errors = global_id_errors(
                ec.schema._schema,
                ec.graphql_document,
                query=ec.query,
                operation_name=ec.operation_name,
                variables=ec.variables,
            )
        ec.pre_execution_errors = errors
        yield

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.cost} if self.cost is not None else {}


async def _policy_of(context: object, settings: Settings) -> TenantPolicy | None:
    principal = getattr(context, "principal", None)
    if principal is None:
        return None
    return await policies.get(principal.tenant_id, settings.limits.tenant_policy_ttl_seconds)


async def _allowed(tenant_id: int, query: str | None, settings: Settings) -> bool:
    if query is None:
        return False
    return await persisted_queries.allowed_query(tenant_id, sha256_hex(query), settings) is not None


def without_suggestions(error: GraphQLError) -> GraphQLError:
    """The error without graphql-core's "Did you mean ...?" (off in production)."""
    if "Did you mean" not in error.message:
        return error
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


__all__ = [
    "LIMIT_CODES",
    "LimitedParserCache",
    "LimitedValidationCache",
    "coded_syntax_error",
    "limit_error",
    "rules_for",
    "without_suggestions",
]
