"""Global ids checked before execution, with the request's other input.

Strawberry turns an argument declared as a `relay.GlobalID` into one only when the resolver is
called, so a value that is no global id (a bare number, any string that is not base64 of
`Type:id`) failed during execution: a field error with `data`, answered 200, and counted as a
server error. It is the client's input that is wrong, like a variable of the wrong type: this
module finds it before execution, so it is a request error (`BAD_USER_INPUT`, no `data`, 400
with `application/graphql-response+json`) and nothing runs.

What to check is found once per document (the argument and input-object-field positions whose
Strawberry type is `GlobalID`, literal values checked there and then), and the request's
variables are checked against it on each request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    ListValueNode,
    Node,
    ObjectFieldNode,
    OperationDefinitionNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    print_ast,
    type_from_ast,
    visit,
)
from strawberry.relay import GlobalID
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.schema_converter import GraphQLCoreConverter

BAD_USER_INPUT = "BAD_USER_INPUT"


def is_global_id(definition: Any) -> bool:
    """Whether a GraphQL argument or input field is a `GlobalID` (or a list of them)."""
    backref = (getattr(definition, "extensions", None) or {}).get(
        GraphQLCoreConverter.DEFINITION_BACKREF
    )
    type_: Any = getattr(backref, "type", None)
    while hasattr(type_, "of_type"):  # StrawberryOptional, StrawberryList, Maybe
        type_ = type_.of_type
    return type_ is GlobalID


def _valid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        GlobalID.from_id(value)
    except GlobalIDValueError:
        return False
    return True


@dataclass(frozen=True)
class _Findings:
    errors: tuple[GraphQLError, ...]  # literals that are no global id
    variables: frozenset[str]  # variables used where a global id is expected


class _Finder(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.errors: list[GraphQLError] = []
        self.variables: set[str] = set()

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        if is_global_id(self.type_info.get_argument()):
            self._value(node.value, f"Argument '{node.name.value}'")

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        parent = get_named_type(self.type_info.get_parent_input_type())
        if isinstance(parent, GraphQLInputObjectType) and is_global_id(
            parent.fields.get(node.name.value)
        ):
            self._value(node.value, f"Field '{node.name.value}'")

    def _value(self, node: ValueNode, where: str) -> None:
        if isinstance(node, VariableNode):
            self.variables.add(node.name.value)
        elif isinstance(node, ListValueNode):
            for item in node.values:
                self._value(item, where)
        elif isinstance(node, StringValueNode):
            if not _valid(node.value):
                self.errors.append(_error(f"{where} has invalid value {print_ast(node)}", node))
        elif node.kind != "null_value":
            self.errors.append(_error(f"{where} has invalid value {print_ast(node)}", node))


def _error(prefix: str, node: Node | None = None) -> GraphQLError:
    return GraphQLError(
        f"{prefix}: expected a global id (an object's `id`, as the API returned it).",
        node,
        extensions={"code": BAD_USER_INPUT},
    )


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            name is None or (definition.name is not None and definition.name.value == name)
        ):
            return definition
    return None


class _Cache:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.entries: OrderedDict[tuple[str, str | None], _Findings] = OrderedDict()

    def find(
        self, schema: GraphQLSchema, document: DocumentNode, query: str | None, name: str | None
    ) -> _Findings:
        key = (query, name) if query is not None else None
        if key is not None and key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        type_info = TypeInfo(schema)
        finder = _Finder(type_info)
        visit(document, TypeInfoVisitor(type_info, finder))
        findings = _Findings(tuple(finder.errors), frozenset(finder.variables))
        if key is not None:
            self.entries[key] = findings
            if len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)
        return findings


_cache = _Cache(maxsize=1000)


def global_id_errors(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    query: str | None,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> list[GraphQLError]:
    """Errors for the values (literals and this request's variables) that are no global id
    where the schema expects one. Call after validation passed."""
    findings = _cache.find(schema, document, query, operation_name)
    errors = list(findings.errors)
    operation = _operation(document, operation_name)
    if operation is None or not variables:
        return errors
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in variables:
            continue
        type_ = type_from_ast(schema, definition.type)
        bad = _walk(variables[name], type_, name in findings.variables)
        if bad is not None:
            errors.append(_error(f"Variable '${name}' has invalid value {bad!r}", definition))
    return errors


def _walk(value: object, type_: Any, global_id: bool) -> object | None:
    """The first value in `value` (of GraphQL input type `type_`) that should be a global id
    and is not; None when there is none."""
    if value is None:
        return None
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        for item in value if isinstance(value, list) else [value]:
            bad = _walk(item, type_.of_type, global_id)
            if bad is not None:
                return bad
        return None
    if isinstance(type_, GraphQLInputObjectType):
        if not isinstance(value, dict):
            return None  # graphql-core's coercion reports it
        for field_name, field in type_.fields.items():
            if field_name in value:
                bad = _walk(value[field_name], field.type, is_global_id(field))
                if bad is not None:
                    return bad
        return None
    return value if global_id and not _valid(value) else None
