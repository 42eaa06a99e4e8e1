"""Parse a CCTV CSV in a child process while the caller writes the store (``ansim cameras import``).

Reading, parsing, converting to the wire ``Camera`` and serialising it is most of an import's CPU;
writing SQLite is the rest. ``prepared_in_child`` runs the first part in a spawned process and hands
the caller its results in batches through a bounded queue, so the two overlap on two cores and
memory stays bounded (at most ``QUEUE_BATCHES`` batches in flight). The items are exactly those of
``prepared_rows`` over the file's rows, in file order.
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
from reference_server.domain.cameras.repository import Prepared, prepare

#: Items per message: large enough that queue overhead is small, small enough to keep memory flat.
BATCH_ITEMS = 2_000
QUEUE_BATCHES = 16
#: How long the caller waits for the next batch before checking that the child is still alive.
POLL_S = 5.0

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


def _child(path: str, encoding: str | None, out: multiprocessing.Queue[object], parent: int) -> None:
    send = _sender(out, parent)
    try:
        try:
            with gc_paused(), CameraCsvReader(path, encoding=encoding) as reader:
                send(OpenedFile(reader.layout, reader.encoding))
                batch: list[RowError | tuple[int, tuple[object, ...]]] = []
                for item in prepared_rows(reader):
                    # Prepared as a plain tuple: a third of the pickling cost of the named tuple.
                    batch.append(item if isinstance(item, RowError) else (item[0], tuple(item[1])))
                    if len(batch) >= BATCH_ITEMS:
                        send(batch)
                        batch = []
                if batch:
                    send(batch)
        except HeaderError as error:
            send(error)
        except _WriterGone:
            raise
        except Exception as error:  # anything else: the caller raises it
            send(RuntimeError(f"parsing {path} failed: {error!r}"))
        send(None)
    except _WriterGone:
        out.cancel_join_thread()  # nobody will read the pipe: exit without flushing it


def prepared_in_child(
    path: Path, *, encoding: str | None = None, on_open: Callable[[OpenedFile], None] | None = None
) -> Iterator[Item]:
    """The prepared rows of ``path``, parsed in a child process (raises ``HeaderError`` like the reader)."""
    # fork: no re-import of the program in the child (spawn would re-run ``__main__``); the child
    # touches nothing it inherits but the queue, and leaves with os._exit.
    if "fork" in multiprocessing.get_all_start_methods():
        context: ForkContext | SpawnContext = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = context.Queue(maxsize=QUEUE_BATCHES)
    child = context.Process(target=_child, args=(str(path), encoding, results, os.getpid()), daemon=True)
    child.start()
    try:
        while True:
            try:
                message = results.get(timeout=POLL_S)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the parser of {path} exited with {child.exitcode}") from None
                continue
            if message is None:
                break
            if isinstance(message, BaseException):
                raise message
            if isinstance(message, OpenedFile):
                if on_open is not None:
                    on_open(message)
                continue
            make = Prepared._make
            for item in message:  # type: ignore[attr-defined]
                yield item if isinstance(item, RowError) else (item[0], make(item[1]))
        child.join()
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        results.close()
