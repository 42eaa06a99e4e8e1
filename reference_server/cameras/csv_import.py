"""Streaming import of the national CCTV standard dataset (전국CCTV표준데이터) from CSV.

* Layout: detected from the header row by column names (current 18-column layout or the older
  layout; see ``layout``). Surrounding whitespace and a byte-order mark are tolerated.
* Encoding: UTF-8 (with or without BOM) if the first 64 KiB decode strictly as UTF-8 (or
  nearly all of its lines do), else CP949 (a superset of EUC-KR); see ``detect_encoding``. A line
  that does not decode in the chosen encoding becomes a ``RowError``.
* Streaming: the file is read line by line; rows are yielded as ``CameraRecord`` or
  ``RowError(line_number, reason)``; a bad row never stops the import. Line numbers are the
  first physical line of the row (the header is line 1; quoted fields may span lines).
* Bad rows: wrong number of columns; missing, non-numeric, non-finite or out-of-box
  coordinates (box: lat 32.5–39.0, lon 124.0–132.0, see ``fields.KOREA_LAT``); numbers that are
  not whole or out of range; malformed dates; missing 관리번호 (current layout) or 관리기관명; a
  malformed 개방자치단체코드. An empty or 0 카메라대수 reads as 1 (spec CAM-004). A record the
  csv module cannot read (a field over its 131,072-character limit, most often a quote left
  open) is one error naming the lines it took; reading goes on from the next line.
* Legacy rows without 관리번호 get a stable derived id ``<제공기관코드>-<16 hex digits>``: the
  first 64 bits of SHA-256 over road address, lot address, purpose and the coordinates at six
  decimals. The same site always gets the same id across releases and encodings; two rows that
  agree on all of these collapse to one id (the caller decides how to treat duplicates). The
  purpose is part of the key because one pole often carries cameras for several purposes.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from reference_server.cameras import fields
from reference_server.cameras.layout import Header, HeaderError, Layout, detect_layout
from reference_server.cameras.records import CameraRecord, RowError
from reference_server.cameras.row_parser import derive_management_number as derive_management_number
from reference_server.cameras.row_parser import row_parser

SNIFF_BYTES = 64 * 1024


def detect_encoding(head: bytes) -> str:
    """``utf-8-sig`` if ``head`` (the first bytes of a file) is UTF-8, else ``cp949``.

    ``head`` is tried strictly as UTF-8 first. If that fails but the header line and at least
    90 % of the complete lines are valid UTF-8, the file is still UTF-8 with a few corrupt rows
    (they become row errors); otherwise it is CP949/EUC-KR.
    """
    try:
        codecs.getincrementaldecoder("utf-8-sig")(errors="strict").decode(head, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8-sig"
    lines = head.split(b"\n")[:-1] or [head]
    valid = [_is_utf8(line) for line in lines]
    if valid[0] and sum(valid) >= 0.9 * len(valid):
        return "utf-8-sig"
    return "cp949"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class CameraCsvReader:
    """Iterate a CCTV CSV file; use as a context manager so the file is closed."""

    def __init__(
        self,
        path: Path | str,
        *,
        encoding: str | None = None,
        start: int = 0,
        stop: int | None = None,
        first_line: int = 1,
    ) -> None:
        """Read the header; rows then come from the byte range ``start``–``stop`` of the file.

        ``start`` (a line start after the header, physical line ``first_line``) and ``stop`` (a line
        start) cut the file into blocks that readers in several processes parse side by side; line
        numbers stay those of the whole file. A block is exact only if ``start`` is a record
        boundary; the reader of the block before it checks that at its ``stop``: if its last record
        runs on past ``stop`` (a quoted newline there), it sets ``overran`` and reads on to the end
        of the file, so its rows are still exact and the caller drops the later blocks.
        """
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("rb")
        self.overran = False
        self._line_offset = 0
        self._row_end = 0
        try:
            head = self._file.read(SNIFF_BYTES)
            self._file.seek(0)
            self.encoding = encoding or detect_encoding(head)
            self._line_encoding = (
                "utf-8" if self.encoding.lower().replace("_", "-") == "utf-8-sig" else self.encoding
            )
            self._undecodable: set[int] = set()
            lines = self._lines_until(0, None if start else stop, 1)
            self._reader = csv.reader(lines)
            try:
                header_row = next(self._reader)
            except StopIteration:
                raise HeaderError("empty file") from None
            self.header: Header = detect_layout(header_row)
            self._row_end = self._reader.line_num
            if start:
                self._file.seek(start)
                self._line_offset = self._row_end = first_line - 1
                self._reader = csv.reader(self._lines_until(start, stop, first_line))
        except BaseException:
            self._file.close()
            raise

    @property
    def layout(self) -> Layout:
        return self.header.layout

    def _lines_until(self, start: int, stop: int | None, first_line: int) -> Iterator[str]:
        """The file's lines decoded, from byte ``start`` (line ``first_line``) up to the record
        boundary at ``stop`` (None: to the end); past it (setting ``overran``) to the end if a
        record is open there. A line that does not decode is marked and read with replacements."""
        position = start
        for number, raw in enumerate(self._file, start=first_line):
            if stop is not None and position >= stop:
                if self._reader.line_num + self._line_offset == self._row_end:
                    return  # the csv reader asks for a new record: ``stop`` is a record boundary
                self.overran = True
                stop = None
            position += len(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode(self._line_encoding)
            except UnicodeDecodeError:
                self._undecodable.add(number)
                yield raw.decode(self._line_encoding, errors="replace")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CameraCsvReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[CameraRecord | RowError]:
        parse = row_parser(self.header)
        header = self.header
        reader, offset = self._reader, self._line_offset
        previous_end = reader.line_num + offset
        while True:
            try:
                for row in reader:
                    line = previous_end + 1
                    previous_end = self._row_end = reader.line_num + offset
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # blank line
                    if self._undecodable and any(
                        n in self._undecodable for n in range(line, previous_end + 1)
                    ):
                        yield RowError(line, f"bytes that are not valid {self.encoding}")
                        continue
                    if len(row) != header.width:
                        yield RowError(line, f"expected {header.width} columns, found {len(row)}")
                        continue
                    try:
                        yield parse(row, line)
                    except fields.FieldError as exc:
                        yield RowError(line, str(exc))
                return
            except csv.Error as exc:
                # The csv module gave up on this record (a field over its size limit, most often
                # from a quote left open); it reads on from the next line, so the import does too,
                # and the lines the record swallowed are named in its error.
                line = previous_end + 1
                previous_end = self._row_end = reader.line_num + offset
                yield RowError(line, _unreadable(str(exc), line, previous_end))


def _unreadable(reason: str, first: int, last: int) -> str:
    """The error of a record the csv module could not read, with the lines it took."""
    if last > first:
        return f"not readable as CSV ({reason}; an unclosed quote?): lines {first}-{last} skipped"
    return f"not readable as CSV ({reason})"


def iter_camera_csv(path: Path | str, *, encoding: str | None = None) -> Iterator[CameraRecord | RowError]:
    """Stream records and row errors from ``path`` (raises ``HeaderError`` for an unknown header)."""
    with CameraCsvReader(path, encoding=encoding) as reader:
        yield from reader
