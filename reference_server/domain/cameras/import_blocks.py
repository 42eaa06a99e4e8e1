"""Cut a CCTV CSV into byte blocks that two parser children read side by side (``parse_worker``).

A block starts and stops at a line start where, by RFC 4180 quoting, a record starts: the number of
``"`` bytes before it is even (a doubled quote counts twice). The guess is made on bytes: ``"``,
``,`` and ``\\r`` are never part of a multibyte character in UTF-8 or CP949, even decoded with
``errors="replace"`` as the reader does, and lines are cut at ``\\n`` bytes anyway. A stray quote
(``5"`` in an unquoted field) makes the guess wrong; so does Python's EUC-KR codec, which can
swallow a ``"`` after an invalid lead byte. So the reader checks the guess while parsing
(``CameraCsvReader(stop=...)`` sets ``overran`` when a record runs on past its stop and then reads
to the end itself): a wrong guess costs speed, never rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Bytes per block: ~30,000 rows of the national layout, a few queue batches in flight per child.
BLOCK_BYTES = 8 << 20
#: Overrides ``BLOCK_BYTES`` (tests cut small files into blocks of a few hundred bytes).
BLOCK_BYTES_ENV = "ANSIM_IMPORT_BLOCK_BYTES"
#: How far past a block's nominal end a boundary is looked for before the rest stays one block.
SEARCH_BYTES = 1 << 20
#: Bytes read at a time while looking for a block's end.
TAIL_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class Block:
    """Bytes ``start``–``stop`` of the file (``stop`` None: to the end); ``start`` is physical line
    ``first_line`` (the header is line 1)."""

    start: int
    stop: int | None
    first_line: int


def block_bytes() -> int:
    return int(os.environ.get(BLOCK_BYTES_ENV, BLOCK_BYTES))


def plan_blocks(path: Path, size: int) -> list[Block]:
    """The blocks of ``path`` of about ``size`` bytes each; one block if the file is smaller than two.

    Read with ``pread`` into short-lived buffers, not mapped: mapped file pages would count in the
    importer's resident size (the whole file, for a moment).
    """
    total = path.stat().st_size
    if total < 2 * size:
        return [Block(0, None, 1)]
    blocks: list[Block] = []
    start, first_line, quotes = 0, 1, 0
    with path.open("rb") as handle:
        fd = handle.fileno()
        while start + size < total:
            head = os.pread(fd, size, start)
            found = _boundary(fd, start + size, total, quotes + head.count(b'"'))
            if found is None:
                break
            boundary, quotes, newlines = found
            blocks.append(Block(start, boundary, first_line))
            first_line += head.count(b"\n") + newlines
            start = boundary
    blocks.append(Block(start, None, first_line))
    return blocks


def _boundary(fd: int, at: int, total: int, quotes: int) -> tuple[int, int, int] | None:
    """The first line start after ``at`` with an even number of quotes before it (``quotes`` are
    those before ``at``), within ``SEARCH_BYTES`` and before the end of the file; with the quotes
    before it and the newlines from ``at`` to it."""
    end, newlines = min(total, at + SEARCH_BYTES), 0
    while at < end and (chunk := os.pread(fd, min(TAIL_BYTES, end - at), at)):
        offset = 0
        while (newline := chunk.find(b"\n", offset)) >= 0:
            quotes += chunk.count(b'"', offset, newline)
            newlines += 1
            offset = newline + 1
            if quotes % 2 == 0:
                return (at + offset, quotes, newlines) if at + offset < total else None
        quotes += chunk.count(b'"', offset)
        at += len(chunk)
    return None
