"""``ansim cameras import`` of a file cut into blocks for two parser children (``import_blocks``,
``parse_worker``): records with quoted newlines, commas and doubled quotes across the block
boundaries; rows, rejected rows and their line numbers (the record's first physical line, CAM-017)
must be exactly those of one reader over the whole file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ansim_sdk.cli import app
from reference_server.cameras.csv_import import CameraCsvReader
from reference_server.cameras.layout import CURRENT_COLUMNS
from reference_server.domain.cameras import import_blocks, importer

ROWS = 600
#: A few records per block: about 40 blocks, most nominal block ends inside a quoted field.
SMALL_BLOCK = 2_048
#: Every record spans three physical lines (two newlines inside its quoted 촬영방면정보).
LINES_PER_ROW = 3


def _row(i: int, number: int, latitude: str) -> str:
    direction = f'"정문\n{i}번, ""남"" 방면\n끝"'
    return (
        f"3000000,B{number:05d},서울특별시 종로구청,,,생활방범,1,200,{direction},30,202005,,"
        f"{latitude},126.9843,2026-05-18,,,"
    )


def _repeats(i: int) -> bool:
    """Row ``i`` repeats the 관리번호 of row i - 1 (a row that is itself accepted)."""
    return i % 11 == 5 and (i - 1) % 7 != 3


def _first_line(i: int) -> int:
    return 2 + LINES_PER_ROW * i  # the header is line 1


def _write(path: Path, *, stray_quote: bool = False) -> dict[int, str]:
    """The CSV; returns the rejected rows' first lines and reasons."""
    rows, rejected = [], {}
    for i in range(ROWS):
        if i % 7 == 3:
            rows.append(_row(i, i, "51.5"))
            rejected[_first_line(i)] = "outside Korea"
        elif _repeats(i):
            rows.append(_row(i, i - 1, "37.58"))
            rejected[_first_line(i)] = f"repeats the row of line {_first_line(i - 1)}"
        else:
            rows.append(_row(i, i, "37.58"))
    if stray_quote:  # a quote inside an unquoted field: literal for CSV, but odd for a byte count
        rows[40] = rows[40].replace("서울특별시 종로구청", '서울특별시 5"종로구청')
    path.write_text("\n".join([",".join(CURRENT_COLUMNS), *rows]) + "\n", encoding="utf-8-sig")
    return rejected


def _import(path: Path, data_dir: Path) -> tuple[str, str, list[tuple[object, ...]]]:
    result = CliRunner().invoke(app, ["cameras", "import", str(path), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.stderr
    with sqlite3.connect(data_dir / importer.DATABASE_FILE) as conn:
        stored = conn.execute(
            "SELECT key, camera_id, management_number, agency_code, purpose, latitude, longitude,"
            " searchable, content_hash, data FROM cameras ORDER BY key"
        ).fetchall()
    return result.stdout, result.stderr, stored


@pytest.mark.parametrize("stray_quote", [False, True], ids=["quoted-newlines", "stray-quote"])
def test_blocks_give_the_rows_and_line_numbers_of_one_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stray_quote: bool
) -> None:
    csv_path = tmp_path / "cctv.csv"
    rejected = _write(csv_path, stray_quote=stray_quote)
    one = _import(csv_path, tmp_path / "one")  # under two default blocks: one parser child
    monkeypatch.setenv(import_blocks.BLOCK_BYTES_ENV, str(SMALL_BLOCK))
    assert len(import_blocks.plan_blocks(csv_path, SMALL_BLOCK)) > 30
    out, err, stored = _import(csv_path, tmp_path / "blocks")
    assert (out, err, stored) == one
    assert f"imported {ROWS - len(rejected)}, updated 0, unchanged 0, rejected {len(rejected)}" in out
    reported = [line for line in err.splitlines() if line.startswith("line ")]
    assert [int(text.split(":")[0].removeprefix("line ")) for text in reported] == list(rejected)
    for text, reason in zip(reported, rejected.values(), strict=True):
        assert reason in text, (text, reason)
    assert {row[2] for row in stored} == {f"B{i:05d}" for i in range(ROWS)} - {
        f"B{i:05d}" for i in range(ROWS) if i % 7 == 3 or _repeats(i)
    }


def test_every_planned_block_starts_at_a_record(tmp_path: Path) -> None:
    """The planner's quote count keeps quoted newlines inside a block: no reader runs past its stop,
    and the blocks' rows together are the file's rows with the file's line numbers."""
    csv_path = tmp_path / "cctv.csv"
    _write(csv_path)
    with CameraCsvReader(csv_path) as reader:
        whole = list(reader)
    blocks = import_blocks.plan_blocks(csv_path, SMALL_BLOCK)
    assert len(blocks) > 30
    parts: list[object] = []
    for block in blocks:
        with CameraCsvReader(
            csv_path, start=block.start, stop=block.stop, first_line=block.first_line
        ) as reader:
            parts.extend(reader)
            assert not reader.overran, block
    assert parts == whole and len(whole) == ROWS


def test_a_record_open_at_the_stop_is_read_to_the_end(tmp_path: Path) -> None:
    """A block cut inside a quoted field (as after a stray quote): its reader reads on to the end."""
    csv_path = tmp_path / "cctv.csv"
    _write(csv_path)
    with CameraCsvReader(csv_path) as reader:
        whole = list(reader)
    inside = csv_path.read_bytes().index("번, ".encode()) + 10  # past the first quoted newline
    stop = csv_path.read_bytes().index(b"\n", inside) + 1
    with CameraCsvReader(csv_path, stop=stop) as reader:
        rows = list(reader)
        assert reader.overran
    assert rows == whole
