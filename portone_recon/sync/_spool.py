"""The NDJSON spool a listing's pages are written to before DuckDB reads them in one statement.

Each page body is appended as one line ``{"n": <page number>, "b": <the response body>}``; files are
finished every ``chunk_items`` items so one thread can fill the spool while another stages the finished
files (see :func:`portone_recon.sync._ingest.stage_typed`).
"""

from __future__ import annotations

import contextlib
import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from portone_recon.errors import MalformedResponseError


class PageLike(Protocol):
    """What the ingest needs of a page (the client's ``RawPage`` fits)."""

    @property
    def endpoint(self) -> str: ...

    @property
    def items(self) -> list[Any]: ...

    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True)
class SpoolChunk:
    """A finished file of a spool: its path and longest line (owned by whoever took it)."""

    path: Path
    max_line: int

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Spool:
    """NDJSON files of page bodies, one line per page, with each page's endpoint remembered.

    Pages are numbered in the order they are added (``n``, across files). With ``chunk_items``, the
    current file is finished once it holds that many items and a new one is started, so one thread can
    fill the spool while another stages the finished files (:meth:`take_chunks` hands each finished file
    over exactly once; :func:`stage_typed` does this). Without it, the spool is one file.

    Args:
        directory: where the files go (a temporary folder owned by the caller).
        name: file name stem.
        chunk_items: finish a file after this many items (None: never before :meth:`close`).
    """

    def __init__(self, directory: Path, name: str, *, chunk_items: int | None = None) -> None:
        self._directory = directory
        self._name = name
        self._chunk_items = chunk_items
        self._seq = 0
        self._finished: queue.SimpleQueue[SpoolChunk] = queue.SimpleQueue()
        self._file: BinaryIO | None = None
        self._file_items = 0
        self._file_lines = 0
        self._file_max_line = 0
        self._closed = False
        self.endpoints: list[str] = []
        self.items = 0
        #: the TEMP table this spool's files are staged for, and its part tables so far (stage_typed).
        self.staged_into: str | None = None
        self.staged_parts: list[str] = []
        self._open_file()

    def _open_file(self) -> None:
        self._path = self._directory / f"{self._name}.{self._seq}.ndjson"
        self._seq += 1
        self._file = open(self._path, "wb")  # noqa: SIM115 - closed by _finish_file()
        self._file_items = self._file_lines = self._file_max_line = 0

    def _finish_file(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        if self._file_lines:
            self._finished.put(SpoolChunk(self._path, self._file_max_line))
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)

    def add_page(self, page: PageLike) -> None:
        """Append one page (its raw body when it has one, else its items).

        A page that knows its item ``count`` without decoding (the client's fast path) is spooled as
        bytes; its items are checked when the spool is staged.
        """
        body = page.body
        count = getattr(page, "count", None)
        if count is None or not body:
            items = page.items
            if not isinstance(items, list):
                raise MalformedResponseError(
                    f"expected an array, got {type(items).__name__}",
                    method="GET",
                    endpoint=page.endpoint,
                    field="response.list",
                )
            if not body:
                self.add_items(page.endpoint, items)
                return
            count = len(items)
        if b"\n" in body or b"\r" in body:
            # JSON never has raw newlines inside strings, so this keeps the document identical.
            body = body.replace(b"\r", b" ").replace(b"\n", b" ")
        self._write(body, page.endpoint, count)

    def add_items(self, endpoint: str, items: list[Any]) -> None:
        """Append already-parsed items (single lookups, multi-lookups) as one synthetic page."""
        self._write(orjson.dumps({"response": {"list": items}}), endpoint, len(items))

    def _write(self, body: bytes, endpoint: str, count: int) -> None:
        if self._closed:
            raise ValueError(f"spool {self._name} is closed")
        if self._file is None:
            self._open_file()
        assert self._file is not None
        head = b'{"n":%d,"b":' % len(self.endpoints)
        self._file.write(head)
        self._file.write(body)
        self._file.write(b"}\n")
        self._file_max_line = max(self._file_max_line, len(head) + len(body) + 2)
        self._file_lines += 1
        self._file_items += count
        self.endpoints.append(endpoint)  # after the write: a reader never sees n without its line
        self.items += count
        if self._chunk_items is not None and self._file_items >= self._chunk_items:
            self._finish_file()

    def take_chunks(self) -> list[SpoolChunk]:
        """The files finished since the last call, in page order (the caller removes them)."""
        out: list[SpoolChunk] = []
        while True:
            try:
                out.append(self._finished.get_nowait())
            except queue.Empty:
                return out

    @property
    def pages(self) -> int:
        return len(self.endpoints)

    def close(self) -> None:
        """Finish the current file; nothing more can be added."""
        if not self._closed:
            self._closed = True
            self._finish_file()

    def remove(self) -> None:
        """Close and delete every file not yet taken."""
        self.close()
        for chunk in self.take_chunks():
            chunk.remove()
