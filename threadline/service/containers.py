"""A response's code interpreter container: the sandbox of its conversation's thread, whose id
is the container's (`api/responses/render.py`). Its files are the ones the thread's sandbox
holds (`code_sandbox`: the files given to the code, and those it wrote), by their paths under
`/mnt/data`; each is a File of the project, read here through its container as the openai
SDK's `containers.files` does (a file cited by `container_file_citation` is fetched so).

Containers made on their own (`POST /containers`) are not kept yet: a response's container
is made with it (`{"type": "auto"}`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from threadline.domain.errors import InvalidRequest, NotFound
from threadline.domain.records import FileRecord, Obj, Page, PageRequest
from threadline.service.files import FileService
from threadline.store.base import Store
from threadline.tools.code_interpreter.tool import SCRATCH


class ContainerService:
    def __init__(self, store: Store, files: FileService):
        self.store = store
        self.files = files

    async def paths(self, project: str, container_id: str) -> dict[str, str]:
        """The files of the container: the id of each, by its path."""
        async with self.store.transaction(durable=False) as tx:
            thread = await tx.get_thread(project, container_id)
        if thread is None:
            raise NotFound("container", container_id)
        state: Obj = dict(
            thread.get("code_sandbox") or {}
        )  # the tool's THREAD_FIELD, spelled out for its TypedDict
        names: dict[str, str] = state.get("files") or {}
        return {f"{SCRATCH}/{name}": file_id for name, file_id in names.items()}

    async def files_of(self, project: str, container_id: str) -> dict[str, FileRecord]:
        """The container's files by path; one deleted since the code wrote it is gone."""
        found: dict[str, FileRecord] = {}
        for path, file_id in (await self.paths(project, container_id)).items():
            with contextlib.suppress(NotFound):
                found[path] = await self.files.get(project, file_id)
        return found

    async def page_files(
        self, project: str, container_id: str, page: PageRequest
    ) -> Page[tuple[str, FileRecord]]:
        """A page of the container's files (path and file), oldest first or newest first, by
        exact cursors as the store's pages are. A container holds a conversation's few files:
        they are paged here, in memory."""
        held = sorted(
            (await self.files_of(project, container_id)).items(),
            key=lambda entry: (entry[1]["created_at"], entry[1]["id"]),
            reverse=page.order == "desc",
        )
        ids = [record["id"] for _, record in held]
        for cursor, which in ((page.after, "after"), (page.before, "before")):
            if cursor is not None and cursor not in ids:
                raise InvalidRequest(
                    f"No object found with id '{cursor}' to page from.", param=which
                )
        if page.after is not None:
            held = held[ids.index(page.after) + 1 :]
        if page.before is not None and page.after is None:
            held = held[: ids.index(page.before)]
            return Page(data=held[-page.limit :], has_more=len(held) > page.limit)
        return Page(data=held[: page.limit], has_more=len(held) > page.limit)

    async def file(self, project: str, container_id: str, file_id: str) -> tuple[FileRecord, str]:
        """A file of the container, and its path there."""
        for path, held in (await self.paths(project, container_id)).items():
            if held == file_id:
                return await self.files.get(project, file_id), path
        raise NotFound("container file", file_id)

    async def content(
        self, project: str, container_id: str, file_id: str
    ) -> tuple[FileRecord, AsyncIterator[bytes]]:
        await self.file(project, container_id, file_id)
        return await self.files.content(project, file_id)
