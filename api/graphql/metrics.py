"""The `OperationMetrics` schema extension: reports each GraphQL operation's name, type, tenant
and error codes to the request's `RequestInfo`, which `core.logging.RequestContextMiddleware`
observes once per request into the Prometheus objects of `core.metrics` (what is measured and
the bounds on label cardinality are described there)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import Token
from typing import Any

import structlog
from graphql import FieldNode, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from core.metrics import operation_label
from core.request_info import current_request


def _root_field_name(definition: OperationDefinitionNode) -> str | None:
    for selection in definition.selection_set.selections:
        if isinstance(selection, FieldNode):
            return selection.name.value
    return None


def error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    # Parse and validation errors carry no code (they are the client's to fix).
    return "GRAPHQL_VALIDATION_FAILED" if error.original_error is None else "INTERNAL_SERVER_ERROR"


class OperationMetrics(SchemaExtension):
    """Reports the operation's name, type, tenant and error codes to the request's
    `RequestInfo`. Only `on_operation` and `on_execute`: no per-field hook (design.md: those
    cost 20-80%). Listed first among the schema's extensions, so it sees the errors after
    masking."""

    def on_operation(self) -> Iterator[None]:
        self._log_tokens: Mapping[str, Token[Any]] = {}
        try:
            yield
        finally:
            # after every other extension's post-processing (e.g. the masked-error log line),
            # which therefore still carries tenant and operation
            if self._log_tokens:
                with contextlib.suppress(ValueError, LookupError):  # (another context)
                    structlog.contextvars.reset_contextvars(**self._log_tokens)
        info = current_request.get()
        if info is None or info.kind != "http":
            # A websocket runs many operations over one connection: nothing to accumulate.
            return
        ec = self.execution_context
        if info.operation is None:
            # parse or validation failed before `on_execute`
            info.operation, info.operation_type = "invalid", "invalid"
        result = ec.result
        for error in getattr(result, "errors", None) or ():
            info.error_codes.append(error_code(error))

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        name = ec.operation_name
        definition = _selected_operation(ec.graphql_document, name)
        op_type = definition.operation.value if definition is not None else "unknown"
        if definition is not None:
            if name is None and definition.name is not None:
                name = definition.name.value
            if name is None:
                root = _root_field_name(definition)
                name = f"anonymous_{root}" if root else "anonymous"
        label = operation_label(name or "anonymous")
        principal = getattr(getattr(ec, "context", None), "principal", None)
        tenant = principal.tenant_schema if principal is not None else None
        info = current_request.get()
        if info is None or info.kind == "http":
            # Log lines written while the operation runs carry these (request_id is bound by
            # the request middleware). Not on websockets: one connection, many operations.
            self._log_tokens = structlog.contextvars.bind_contextvars(
                tenant=tenant, operation=label, operation_type=op_type
            )
        if info is not None and info.kind == "http":
            info.operation, info.operation_type, info.tenant = label, op_type, tenant
        yield


def _selected_operation(document: object, name: str | None) -> OperationDefinitionNode | None:
    for definition in getattr(document, "definitions", ()):
        if isinstance(definition, OperationDefinitionNode) and (
            name is None or (definition.name is not None and definition.name.value == name)
        ):
            return definition
    return None
