"""Writing posts: `importPosts` stores a file's posts through a collection task."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from domain.collection.service import collection_tasks
from domain.errors import FieldError
from domain.errors import ValidationFailed as DomainValidationFailed
from schema.collection.types import CollectionTask
from schema.errors import ValidationFailed, run_mutation
from schema.permissions import requires


@strawberry.type
class ImportPostsSuccess:
    task: CollectionTask


ImportPostsPayload = Annotated[
    ImportPostsSuccess | ValidationFailed, strawberry.union("ImportPostsPayload")
]


@strawberry.type
class PostMutations:
    @strawberry.mutation(
        extensions=[requires("collection:write")],
        description="Import posts from a CSV or JSONL file (GraphQL multipart upload). "
        "Returns at once with a task; follow it with collectionTaskUpdated.",
    )
    async def import_posts(self, info: Info, file: Upload) -> ImportPostsPayload:
        max_bytes = info.context.settings.import_max_bytes

        async def run() -> ImportPostsSuccess:
            filename = getattr(file, "filename", None) or "upload"
            read = getattr(file, "read", None)
            if read is None:
                raise DomainValidationFailed(FieldError("file", "expected an uploaded file"))
            content = await read(max_bytes + 1)
            task = await collection_tasks.create_import(
                filename=filename, content=content, max_bytes=max_bytes
            )
            return ImportPostsSuccess(task=CollectionTask.from_model(task))

        return await run_mutation(run)  # type: ignore[return-value]
