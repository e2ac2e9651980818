"""The cost of a GraphQL operation, compiled once per document and evaluated per request.

Objects cost 1, scalars 0, lists and connections times their `first`/`last`/`limit` (default:
the argument's default, else `Limits.default_list_size`, or a known typical length from
`LIST_SIZE_HINTS`). The compiled plan is cached per (query text, operation name, list size);
evaluating it with the request's variables is a walk over a few tuples. The validation cache
(api/graphql/limits.py) compares the result with `cost_limit` and refuses QUERY_TOO_COSTLY.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)

from core.settings import DEFAULT_MAX_COST, Limits, get_settings
from tenants.plans import plan_for

# Arguments whose value is the number of items a list or connection field returns.
SIZE_ARGUMENTS = ("first", "last", "limit")


def cost_limit(limits: Limits, plan: str | None) -> int:
    """The cost ceiling for a tenant on `plan` (None: no tenant or no plan): `plan_max_cost`
    for the plans it names, else `max_cost` when set, else the plan's own ceiling."""
    if plan is not None and plan in limits.plan_max_cost:
        return limits.plan_max_cost[plan]
    if limits.max_cost is not None:
        return limits.max_cost
    if plan is None:
        return DEFAULT_MAX_COST
    return plan_for(plan).max_query_cost


# Unsized list fields whose typical length is known (used instead of default_list_size):
# an influencer has about one account per platform, and there are four platforms.
LIST_SIZE_HINTS: dict[str, int] = {"Influencer.accounts": 4}


# A compiled operation: a tuple of field nodes (kind, size, size_variable, children).
# kind: "o" object (1 + children), "l" list (size x (1 + children)),
#       "p" paginated object, i.e. a connection (1 + size x children).
_Node = tuple[str, int, str | None, "_Plan"]
_Plan = tuple[_Node, ...]


def _unwrap(type_: GraphQLType) -> tuple[bool, GraphQLType]:
    """(is a list, the named type)."""
    is_list = False
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        if isinstance(type_, GraphQLList):
            is_list = True
        type_ = type_.of_type
    return is_list, type_


class _Compiler:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variable_defaults: Mapping[str, int],
        default_list_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variable_defaults = variable_defaults
        self.default_list_size = default_list_size
        self.memo: dict[str, _Plan] = {}

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLType, visiting: frozenset[str]
    ) -> _Plan:
        if selection_set is None:
            return ()
        nodes: list[_Node] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                node = self.field(selection, parent, visiting)
                if node is not None:
                    nodes.append(node)
            elif isinstance(selection, InlineFragmentNode):
                cond = selection.type_condition
                type_ = self.schema.get_type(cond.name.value) if cond else parent
                # Abstract types: every branch is counted (an upper bound).
                nodes.append(
                    (
                        "f",
                        1,
                        None,
                        self.selections(selection.selection_set, type_ or parent, visiting),
                    )
                )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting:
                    continue
                if name not in self.memo:
                    type_ = self.schema.get_type(fragment.type_condition.name.value)
                    self.memo[name] = self.selections(
                        fragment.selection_set, type_ or parent, visiting | {name}
                    )
                nodes.append(("f", 1, None, self.memo[name]))
        return tuple(nodes)

    def field(self, node: FieldNode, parent: GraphQLType, visiting: frozenset[str]) -> _Node | None:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return None
        definition: GraphQLField | None = parent.fields.get(name)
        if definition is None:
            return None
        is_list, named = _unwrap(definition.type)
        if is_leaf_type(named):
            return None  # scalars and enums (and lists of them) are free
        size, size_var, paginated = self._size(node, definition)
        children = self.selections(node.selection_set, named, visiting)
        if is_list:
            if size is None:
                # A list inside a connection is the page its parent already priced.
                in_connection = get_named_type(parent).name.endswith("Connection")
                hint = LIST_SIZE_HINTS.get(f"{parent.name}.{name}")
                size = 1 if in_connection else hint or self.default_list_size
            return ("l", size, size_var, children)
        if paginated:
            return ("p", size if size is not None else self.default_list_size, size_var, children)
        return ("o", 1, None, children)

    def _size(
        self, node: FieldNode, definition: GraphQLField
    ) -> tuple[int | None, str | None, bool]:
        """(the size, the variable that may override it, whether the field takes a size)."""
        for arg_name in SIZE_ARGUMENTS:
            arg_def = definition.args.get(arg_name)
            if arg_def is None:
                continue
            default = arg_def.default_value if isinstance(arg_def.default_value, int) else None
            for arg in node.arguments or ():
                if arg.name.value != arg_name:
                    continue
                if isinstance(arg.value, IntValueNode):
                    return int(arg.value.value), None, True
                if isinstance(arg.value, VariableNode):
                    var = arg.value.name.value
                    return self.variable_defaults.get(var, default), var, True
            return default, None, True
        return None, None, False


def compile_cost(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    default_list_size: int,
) -> _Plan:
    operation: OperationDefinitionNode | None = None
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = definition
        elif isinstance(definition, OperationDefinitionNode) and (
            operation is None
            or (operation_name and definition.name and definition.name.value == operation_name)
        ):
            operation = definition
    if operation is None:
        return ()
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    defaults = {
        v.variable.name.value: int(v.default_value.value)
        for v in operation.variable_definitions or ()
        if isinstance(v.default_value, IntValueNode)
    }
    compiler = _Compiler(schema, fragments, defaults, default_list_size)
    return compiler.selections(operation.selection_set, root, frozenset()) if root else ()


def evaluate_cost(plan: _Plan, variables: Mapping[str, Any] | None) -> int:
    memo: dict[int, int] = {}
    variables = variables or {}

    def cost(nodes: _Plan) -> int:
        key = id(nodes)
        if key in memo:
            return memo[key]
        total = 0
        for kind, size, var, children in nodes:
            if var is not None:
                value = variables.get(var)
                if isinstance(value, int) and not isinstance(value, bool):
                    size = value
            size = max(size, 0)
            inner = cost(children)
            if kind == "l":
                total += size * (1 + inner)
            elif kind == "p":
                total += 1 + size * inner
            elif kind == "o":
                total += 1 + inner
            else:  # "f": a fragment's selections, merged into the parent
                total += inner
        memo[key] = total
        return total

    return cost(plan)


class _PlanCache:
    """A small LRU of compiled plans keyed by (query text, operation name, list size)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.entries: OrderedDict[tuple[str, str | None, int], _Plan] = OrderedDict()

    def get(
        self,
        schema: GraphQLSchema,
        query: str | None,
        document: Any,
        operation_name: str | None,
        default_list_size: int,
    ) -> _Plan:
        if query is None:
            return compile_cost(schema, document, operation_name, default_list_size)
        key = (query, operation_name, default_list_size)
        plan = self.entries.get(key)
        if plan is None:
            plan = compile_cost(schema, document, operation_name, default_list_size)
            self.entries[key] = plan
            if len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        return plan


_plans = _PlanCache(maxsize=1000)


def operation_cost(
    schema: GraphQLSchema,
    document: Any,
    *,
    query: str | None = None,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
) -> int:
    """The cost of the operation: objects 1, scalars 0, lists and connections times their
    `first`/`last`/`limit` (default: the argument's default, else `default_list_size`)."""
    size = (limits or get_settings().limits).default_list_size
    plan = _plans.get(schema, query, document, operation_name, size)
    return evaluate_cost(plan, variables)


@dataclass
class CostBudget:
    """What the operations of one batched request have spent so far: the ceiling is per
    request, so a batch shares it (GraphQLApp sets one around a batch)."""

    spent: int = 0


batch_budget: ContextVar[CostBudget | None] = ContextVar("batch_budget", default=None)
