"""Parse a CCTV CSV in child processes while the caller writes the store (``ansim cameras import``).

Reading, parsing, converting to the wire ``Camera`` and serialising it is most of an import's CPU;
writing SQLite is the rest. ``prepared_in_child`` runs the first part in spawned processes and hands
the caller its results in batches through bounded queues, so parsing and writing overlap and
memory stays bounded (at most ``QUEUE_BATCHES`` batches in flight per child). A file of two blocks
or more (``import_blocks``) is parsed by ``PARSERS`` children taking alternate blocks, and the
caller reads the blocks back in file order. The items are exactly those of ``prepared_rows`` over
the file's rows, in file order, whatever the number of children.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.context import ForkContext, SpawnContext
from pathlib import Path

from reference_server.cameras.csv_import import CameraCsvReader
from reference_server.cameras.layout import HeaderError, Layout
from reference_server.cameras.records import CameraRecord, RowError
from reference_server.domain.cameras.convert import ConversionError, to_camera
from reference_server.domain.cameras.gc_pause import gc_paused
from reference_server.domain.cameras.import_blocks import Block, block_bytes, plan_blocks
from reference_server.domain.cameras.repository import Prepared, prepare

#: Items per message: large enough that queue overhead is small, small enough to keep memory flat.
BATCH_ITEMS = 2_000
QUEUE_BATCHES = 16
#: How long the caller waits for the next batch before checking that the child is still alive.
POLL_S = 5.0
#: Parser children of a file of several blocks: block i goes to child i % PARSERS.
PARSERS = 2

Item = RowError | tuple[int, Prepared]


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """What the reader found out about the file: its layout and encoding."""

    layout: Layout
    encoding: str


def prepared_rows(rows: Iterable[CameraRecord | RowError]) -> Iterator[Item]:
    """Each row as ``(line, Prepared)``, or a ``RowError`` if it is bad or has no wire Camera."""
    for row in rows:
        if isinstance(row, RowError):
            yield row
            continue
        try:
            camera = to_camera(row)
        except ConversionError as error:
            yield RowError(row.line_number, str(error))
            continue
        yield row.line_number, prepare(camera)


@dataclass(frozen=True, slots=True)
class BlockEnd:
    """A block's rows are all sent; ``overran``: they ran on to the end of the file (a record was
    open at the block's stop), so the later blocks, parsed from a wrong start, are dropped."""

    overran: bool


class _WriterGone(Exception):
    """The importing process ended (e.g. killed) while the child still had rows for it."""


def _sender(out: multiprocessing.Queue[object], parent: int) -> Callable[[object], None]:
    """``out.put`` that gives up once ``parent`` is gone: a killed writer never frees queue slots,
    and without this check its child would wait for one forever (an orphan holding the file)."""

    def send(message: object) -> None:
        while True:
            try:
                out.put(message, timeout=POLL_S)
                return
            except queue.Full:
                if os.getppid() != parent:
                    raise _WriterGone from None

    return send


def _send_rows(rows: Iterable[CameraRecord | RowError], send: Callable[[object], None]) -> None:
    batch: list[RowError | tuple[int, tuple[object, ...]]] = []
    for item in prepared_rows(rows):
        # Prepared as a plain tuple: a third of the pickling cost of the named tuple.
        batch.append(item if isinstance(item, RowError) else (item[0], tuple(item[1])))
        if len(batch) >= BATCH_ITEMS:
            send(batch)
            batch = []
    if batch:
        send(batch)


def _child(
    path: str,
    encoding: str | None,
    out: multiprocessing.Queue[object],
    parent: int,
    blocks: list[Block] | None = None,
    announce: bool = True,
) -> None:
    """Send the rows of the file (``blocks`` None), or of each of ``blocks`` followed by a
    ``BlockEnd``; then None. ``announce``: send the ``OpenedFile`` first."""
    send = _sender(out, parent)
    try:
        try:
            with gc_paused():
                for block in blocks or [Block(0, None, 1)]:
                    with CameraCsvReader(
                        path,
                        encoding=encoding,
                        start=block.start,
                        stop=block.stop,
                        first_line=block.first_line,
                    ) as reader:
                        if announce:
                            send(OpenedFile(reader.layout, reader.encoding))
                            announce = False
                        _send_rows(reader, send)
                    if blocks is not None:
                        send(BlockEnd(reader.overran))
                    if reader.overran:
                        break
        except HeaderError as error:
            send(error)
        except _WriterGone:
            raise
        except Exception as error:  # anything else: the caller raises it
            send(RuntimeError(f"parsing {path} failed: {error!r}"))
        send(None)
    except _WriterGone:
        out.cancel_join_thread()  # nobody will read the pipe: exit without flushing it


def _context() -> ForkContext | SpawnContext:
    # fork: no re-import of the program in the child (spawn would re-run ``__main__``); the child
    # touches nothing it inherits but the queue, and leaves with os._exit.
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _receive(
    results: multiprocessing.Queue[object],
    child: multiprocessing.process.BaseProcess,
    path: Path,
    on_open: Callable[[OpenedFile], None] | None,
) -> object:
    """The child's next batch, ``BlockEnd`` or None; raises what the child sent or its death."""
    while True:
        try:
            message = results.get(timeout=POLL_S)
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"the parser of {path} exited with {child.exitcode}") from None
            continue
        if isinstance(message, BaseException):
            raise message
        if isinstance(message, OpenedFile):
            if on_open is not None:
                on_open(message)
            continue
        return message


def _items(batch: object) -> Iterator[Item]:
    make = Prepared._make
    for item in batch:  # type: ignore[attr-defined]
        yield item if isinstance(item, RowError) else (item[0], make(item[1]))


def prepared_in_child(
    path: Path, *, encoding: str | None = None, on_open: Callable[[OpenedFile], None] | None = None
) -> Iterator[Item]:
    """The prepared rows of ``path``, parsed in child processes (raises ``HeaderError`` like the reader)."""
    blocks = plan_blocks(path, block_bytes())
    if len(blocks) > 1:
        yield from _prepared_in_children(path, blocks, encoding, on_open)
        return
    context = _context()
    results: multiprocessing.Queue[object] = context.Queue(maxsize=QUEUE_BATCHES)
    child = context.Process(target=_child, args=(str(path), encoding, results, os.getpid()), daemon=True)
    child.start()
    try:
        while (message := _receive(results, child, path, on_open)) is not None:
            yield from _items(message)
        child.join()
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        results.close()


def _prepared_in_children(
    path: Path, blocks: list[Block], encoding: str | None, on_open: Callable[[OpenedFile], None] | None
) -> Iterator[Item]:
    """``PARSERS`` children parse alternate blocks; their rows are read back block by block."""
    context = _context()
    queues: list[multiprocessing.Queue[object]] = [
        context.Queue(maxsize=QUEUE_BATCHES) for _ in range(PARSERS)
    ]
    children = [
        context.Process(
            target=_child,
            args=(str(path), encoding, queues[n], os.getpid(), blocks[n::PARSERS], n == 0),
            daemon=True,
        )
        for n in range(PARSERS)
    ]
    for child in children:
        child.start()
    try:
        for index in range(len(blocks)):
            results, child = queues[index % PARSERS], children[index % PARSERS]
            while not isinstance(message := _receive(results, child, path, on_open), BlockEnd):
                if message is None:
                    raise RuntimeError(f"the parser of {path} ended before block {index}")
                yield from _items(message)
            if message.overran:
                break
    finally:
        for child in children:  # everything they were to send is read (or not wanted any more)
            if child.is_alive():
                child.kill()
            child.join()
        for results in queues:
            results.close()
