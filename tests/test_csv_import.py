"""National CCTV dataset import: layouts, encodings, quoting, typed values, bad rows."""

from __future__ import annotations

import codecs
import dataclasses
import itertools
from datetime import date, datetime
from pathlib import Path

import pytest

from reference_server.cameras.csv_export import write_csv
from reference_server.cameras.csv_import import CameraCsvReader, iter_camera_csv
from reference_server.cameras.layout import CURRENT_COLUMNS, LEGACY_COLUMNS, HeaderError, Layout
from reference_server.cameras.purposes import Purpose
from reference_server.cameras.records import CameraRecord, RowError
from reference_server.cameras.synthetic import synthetic_cameras
from reference_server.geo.codes import AdminAgencyCode

CURRENT_HEADER = ",".join(CURRENT_COLUMNS)
LEGACY_HEADER = ",".join(LEGACY_COLUMNS)
GOOD = (
    "3000000,202630000000800463,서울특별시 종로구청,서울특별시 종로구 북촌로 134-1,,생활방범,2,200,"
    "360도 전방면,30,202005,02-2148-3033,37.58785,126.9843,2026-05-18,,"
    "2026-05-19 22:58:23,2026-05-18 15:24:18"
)


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _split(items: list[CameraRecord | RowError]) -> tuple[list[CameraRecord], list[RowError]]:
    return [i for i in items if isinstance(i, CameraRecord)], [i for i in items if isinstance(i, RowError)]


def test_current_layout_typed_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", [CURRENT_HEADER, GOOD])
    with CameraCsvReader(path) as reader:
        assert reader.layout is Layout.CURRENT and reader.encoding == "utf-8-sig"
        (rec,) = list(reader)
    assert isinstance(rec, CameraRecord)
    assert rec.local_gov_code == AdminAgencyCode("3000000")
    assert rec.management_number == "202630000000800463" and not rec.management_number_derived
    assert rec.managing_agency == "서울특별시 종로구청"
    assert rec.road_address == "서울특별시 종로구 북촌로 134-1" and rec.lot_address is None
    assert rec.purpose == "생활방범" and rec.purpose_code is Purpose.CRIME_PREVENTION
    assert (rec.camera_count, rec.pixels_10k, rec.retention_days) == (2, 200, 30)
    assert rec.direction == "360도 전방면" and rec.installed_year_month == (2020, 5)
    assert rec.phone == "02-2148-3033" and (rec.latitude, rec.longitude) == (37.58785, 126.9843)
    assert rec.data_date == date(2026, 5, 18) and rec.update_kind is None
    assert rec.updated_at == datetime(2026, 5, 19, 22, 58, 23)
    assert rec.last_modified_at == datetime(2026, 5, 18, 15, 24, 18)
    assert rec.layout is Layout.CURRENT and rec.line_number == 2


def test_legacy_layout_with_derived_id(tmp_path: Path) -> None:
    row = (
        '서울특별시 종로구청,"서울특별시 종로구 율곡로 1, 앞",,어린이보호,3,,정면,,2015-03,02-000-0000,'
        "37.57,126.98,2018.06.30,3000000,서울특별시 종로구"
    )
    path = _write(tmp_path / "l.csv", [LEGACY_HEADER, row, row.replace("어린이보호", "생활방범")])
    first, second = list(iter_camera_csv(path))
    assert isinstance(first, CameraRecord) and isinstance(second, CameraRecord)
    assert first.layout is Layout.LEGACY and first.management_number_derived
    assert first.management_number.startswith("3000000-") and len(first.management_number) == 8 + 16
    assert first.management_number != second.management_number  # purpose is part of the key
    again = next(iter(iter_camera_csv(path)))
    assert isinstance(again, CameraRecord) and again.management_number == first.management_number
    assert first.road_address == "서울특별시 종로구 율곡로 1, 앞"
    assert first.camera_count == 3 and first.pixels_10k is None and first.retention_days is None
    assert first.installed_year_month == (2015, 3) and first.data_date == date(2018, 6, 30)
    assert (first.provider_code, first.provider_name) == ("3000000", "서울특별시 종로구")
    assert first.local_gov_code is None and first.updated_at is None


def test_legacy_layout_keeps_given_management_number(tmp_path: Path) -> None:
    header = LEGACY_HEADER + ",관리번호"
    row = "종로구청,,서울 종로구 1,생활방범,1,200,,30,201001,,37.5,127.0,2018-01-01,3000000,종로구,L-1"
    (rec,) = list(iter_camera_csv(_write(tmp_path / "l.csv", [header, row])))
    assert isinstance(rec, CameraRecord)
    assert rec.management_number == "L-1" and not rec.management_number_derived


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp949", "euc-kr"])
def test_encodings(tmp_path: Path, encoding: str) -> None:
    path = _write(tmp_path / "e.csv", [CURRENT_HEADER, GOOD], encoding)
    with CameraCsvReader(path) as reader:
        assert reader.encoding == ("cp949" if encoding in ("cp949", "euc-kr") else "utf-8-sig")
        (rec,) = list(reader)
    assert isinstance(rec, CameraRecord) and rec.managing_agency == "서울특별시 종로구청"


def test_header_tolerates_whitespace_bom_and_order(tmp_path: Path) -> None:
    cols = list(CURRENT_COLUMNS)
    header = ",".join(f"  {c} " for c in reversed(cols))
    cells = GOOD.split(",")
    path = tmp_path / "h.csv"
    path.write_bytes(codecs.BOM_UTF8 + codecs.BOM_UTF8 + f"{header}\n{','.join(reversed(cells))}\n".encode())
    (rec,) = list(iter_camera_csv(path))
    assert isinstance(rec, CameraRecord) and rec.management_number == "202630000000800463"


def test_unknown_header_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(HeaderError, match="no known layout"):
        list(iter_camera_csv(_write(tmp_path / "x.csv", ["a,b,c", "1,2,3"])))
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(HeaderError):
        list(iter_camera_csv(tmp_path / "empty.csv"))


def _bad(good: str, index: int, value: str) -> str:
    cells = good.split(",")
    cells[index] = value
    return ",".join(cells)


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    col = {name: i for i, name in enumerate(CURRENT_COLUMNS)}
    lines = [
        CURRENT_HEADER,  # 1
        GOOD,  # 2
        _bad(GOOD, col["WGS84위도"], ""),  # 3 missing latitude
        _bad(GOOD, col["WGS84경도"], "abc"),  # 4 non-numeric longitude
        _bad(GOOD, col["WGS84위도"], "45.1"),  # 5 outside the Korea box
        _bad(_bad(GOOD, col["WGS84위도"], "126.9843"), col["WGS84경도"], "37.58785"),  # 6 swapped
        _bad(GOOD, col["카메라대수"], "두대"),  # 7 bad number
        _bad(GOOD, col["보관일수"], "-3"),  # 8 out of range
        GOOD + ",extra",  # 9 wrong column count
        _bad(GOOD, col["관리번호"], " "),  # 10 missing 관리번호
        # 11-12: a quoted field spanning two lines is fine
        '3000000,X1,종로구청,"멀티\r\n라인 주소",,생활방범,1,200,,30,202001,,37.5,127.0,2026-05-18,,,',
        _bad(GOOD, col["설치연월"], "2020-13"),  # 13 bad month
        _bad(GOOD, col["데이터기준일자"], "2026-02-30"),  # 14 bad date
        _bad(GOOD, col["개방자치단체코드"], "30000"),  # 15 bad code
        "",  # 16 blank: skipped
        _bad(GOOD, col["WGS84위도"], "nan"),  # 17 not finite
        GOOD,  # 18
    ]
    results = list(iter_camera_csv(_write(tmp_path / "bad.csv", lines)))
    records, errors = _split(results)
    assert [r.line_number for r in records] == [2, 11, 18]
    assert records[1].road_address == "멀티\r\n라인 주소"
    reasons = {e.line_number: e.reason for e in errors}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 17]
    assert "missing WGS84위도" in reasons[3]
    assert "WGS84경도 is not a number" in reasons[4]
    assert "outside Korea" in reasons[5] and "swapped" in reasons[6]
    assert "카메라대수" in reasons[7] and "보관일수" in reasons[8]
    assert "expected 18 columns, found 19" in reasons[9]
    assert "missing 관리번호" in reasons[10]
    assert "설치연월" in reasons[13] and "데이터기준일자" in reasons[14]
    assert "개방자치단체코드" in reasons[15] and "not finite" in reasons[17]


def test_undecodable_line_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    body = (CURRENT_HEADER + "\n" + (GOOD + "\n") * 20).encode("utf-8")
    path.write_bytes(
        body + GOOD.replace("종로구청", "종로구청\udcff").encode("utf-8", "surrogateescape") + b"\n"
    )
    records, errors = _split(list(iter_camera_csv(path)))
    assert len(records) == 20 and [e.line_number for e in errors] == [22]
    assert "not valid utf-8" in errors[0].reason


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp949"])
def test_write_then_read_round_trip(tmp_path: Path, encoding: str) -> None:
    original = list(synthetic_cameras(300, seed=5))
    assert any("," in (r.road_address or "") for r in list(synthetic_cameras(3_000, seed=5)))
    path = tmp_path / "rt.csv"
    assert write_csv(original, path, encoding) == 300
    parsed, errors = _split(list(iter_camera_csv(path)))
    assert errors == []
    for before, after in zip(original, parsed, strict=True):
        assert after == dataclasses.replace(before, line_number=after.line_number)


def test_synthetic_is_deterministic_and_plausible() -> None:
    first = list(itertools.islice(synthetic_cameras(2_000, seed=9), 2_000))
    again = list(synthetic_cameras(2_000, seed=9))
    assert first == again
    assert len({r.management_number for r in first}) == 2_000
    purposes = [r.purpose for r in first]
    assert 0.4 < purposes.count("생활방범") / len(purposes) < 0.6
    assert all(1 <= r.camera_count <= 4 and r.pixels_10k in (200, 400, 800) for r in first)
    assert all(r.managing_agency.endswith("청") for r in first)
    assert any(r.managing_agency == "서울특별시 종로구청" for r in first)
