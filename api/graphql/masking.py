"""`MaskUnexpectedErrors`: what a client is shown of an error."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from api.graphql.limits import coded_syntax_error, settings_of, without_suggestions
from schema.errors import user_facing

log = structlog.get_logger(__name__)


class MaskUnexpectedErrors(SchemaExtension):
    """Domain errors keep their message and code; anything unexpected is logged and masked.
    Where the settings turn suggestions off (production), "Did you mean ...?" is cut."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors or result is None:
            return
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", "-")
        suggestions = settings_of(ctx).suggestions_enabled
        limits = settings_of(ctx).limits
        shown: list[GraphQLError] = []
        for error in errors:
            if isinstance(error, GraphQLSyntaxError):
                error = coded_syntax_error(error, limits)
            visible = user_facing(error)
            if visible is None:
                log.error(
                    "unexpected_error",
                    request_id=request_id,
                    path=error.path,
                    exc_info=error.original_error,
                )
                visible = GraphQLError(
                    f"Unexpected error (request id {request_id}).",
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                )
            shown.append(visible if suggestions else without_suggestions(visible))
        result.errors = shown
