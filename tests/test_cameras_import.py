"""``ansim cameras import``: a malformed file (every kind of bad row reported with its line and
skipped, the good rows imported), a re-import (updated in place, names kept), and a running center
picking up an import without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansim.v1 import camera_pb2, camera_pb2_grpc, common_pb2
from typer.testing import CliRunner

from ansim_sdk.cli import app
from reference_server.cameras.layout import CURRENT_COLUMNS
from tests.support.center import CenterProcess, start_center

HEADER = ",".join(CURRENT_COLUMNS)
GOOD = [
    '3000000,202630000000700001,서울특별시 종로구청,"서울특별시 종로구 북촌로 134-1, 2층",,생활방범,2,200,'
    "360도 전방면,30,202005,(02)2148-3033,37.58785,126.9843,2026-05-18,,"
    "2026-05-19 22:58:23,2026-05-18 15:24:18",
    "3000000,A_0172,서울특별시 종로구청,,서울특별시 종로구 세종로 1,불법주정차,,,,,,,"
    "37.5730,126.9790,2026-05-18,U,,",
    "3000000,C-9,서울특별시 종로구청,,,다목적,1,,,,,,37.5731,126.9791,,D,,",
]
BAD = {
    "expected 18 columns": "3000000,X1,종로구청,,,생활방범,1",
    "missing WGS84위도": "3000000,X2,종로구청,,,생활방범,1,,,,,,,126.98,,,,",
    "outside Korea": "3000000,X3,종로구청,,,생활방범,1,,,,,,51.5,-0.12,,,,",
    "카메라대수 is not a number": "3000000,X4,종로구청,,,생활방범,two,,,,,,37.5,126.9,,,,",
    "데이터기준일자 is not a date": "3000000,X5,종로구청,,,생활방범,1,,,,,,37.5,126.9,2026-13-45,,,",
    "repeats the row of line 2": "3000000,202630000000700001,종로구청,,,생활방범,1,,,,,,37.5,126.9,,,,",
    "gives no valid camera id": "3000000,_x6,종로구청,,,생활방범,1,,,,,,37.5,126.9,,,,",
    "missing 관리번호": "3000000,,종로구청,,,생활방범,1,,,,,,37.5,126.9,,,,",
}


def write(path: Path, rows: list[str], encoding: str = "utf-8-sig") -> Path:
    path.write_text("\r\n".join([HEADER, *rows]) + "\r\n", encoding=encoding)
    return path


def run_import(path: Path, data_dir: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["cameras", "import", str(path), "--data-dir", str(data_dir)])
    return result.exit_code, result.stdout, result.stderr


def test_malformed_file_reports_every_bad_row_and_imports_the_good(tmp_path: Path) -> None:
    rows = GOOD[:1] + list(BAD.values()) + GOOD[1:]
    code, out, err = run_import(write(tmp_path / "cctv.csv", rows, "cp949"), tmp_path / "data")
    assert code == 0, err
    for line, reason in enumerate(BAD, start=3):
        assert f"line {line}: " in err and reason in err.split(f"line {line}: ")[1].splitlines()[0], (
            reason,
            err,
        )
    assert f"imported 3, updated 0, unchanged 0, rejected {len(BAD)}" in out

    changed = [GOOD[0].replace(",2,200,", ",3,200,"), *GOOD[1:]]
    code, out, _ = run_import(write(tmp_path / "cctv2.csv", changed), tmp_path / "data")
    assert code == 0 and "imported 0, updated 1, unchanged 2, rejected 0" in out


def test_a_record_the_csv_module_cannot_read_is_one_error_and_the_import_goes_on(tmp_path: Path) -> None:
    """A quote left open swallows the lines after it until the csv module's field limit; that record
    is reported with the lines it took, and the rows after it are still imported."""
    too_long = "x" * 70_000
    rows = [GOOD[0], f'3000000,X7,종로구청,"{too_long}', too_long, "still in the quote", *GOOD[1:]]
    code, out, err = run_import(write(tmp_path / "cctv.csv", rows), tmp_path / "data")
    assert code == 0, err
    assert "Traceback" not in err
    assert "line 3: not readable as CSV (field larger than field limit" in err
    assert "lines 3-4 skipped" in err
    assert "line 5: expected 18 columns, found 1" in err
    assert "imported 3, updated 0, unchanged 0, rejected 2" in out


def test_unknown_header_and_missing_file_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    assert run_import(tmp_path / "bad.csv", tmp_path / "data")[0] == 2
    assert run_import(tmp_path / "none.csv", tmp_path / "data")[0] == 2


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    data = tmp_path_factory.mktemp("import-center")
    assert run_import(write(data.parent / "first.csv", GOOD), data)[0] == 0  # before the first start
    process = start_center(data)
    yield process
    process.terminate()


@pytest.mark.asyncio(loop_scope="session")
async def test_running_center_serves_and_picks_up_imports(center: CenterProcess, tmp_path: Path) -> None:
    async with center.channel() as channel:
        stub = camera_pb2_grpc.CameraServiceStub(channel)
        md = center.metadata("CENTER_OPERATOR")

        async def get(camera: str) -> camera_pb2.Camera:
            return await stub.GetCamera(
                camera_pb2.GetCameraRequest(name=f"centers/demo/cameras/{camera}"), metadata=md
            )

        legacy = await get("a-0172")  # "A_0172" → "a-0172" [CAM-001]
        assert legacy.management_number == "A_0172"
        assert legacy.purpose == camera_pb2.CAMERA_PURPOSE_PARKING_ENFORCEMENT  # 불법주정차 [CAM-003]
        assert legacy.camera_count == 1 and legacy.data_update_kind == camera_pb2.DATASET_UPDATE_KIND_UPDATE
        first = await get("202630000000700001")
        assert first.managing_agency_phone == "02-2148-3033" and first.install_year_month == "2020-05"
        assert first.data_update_time.ToJsonString() == "2026-05-19T13:58:23Z"  # KST → UTC [CAM-007]
        assert first.address.road_address == "서울특별시 종로구 북촌로 134-1, 2층"

        def search(lat: float, lon: float) -> Any:
            return stub.SearchNearbyCameras(
                camera_pb2.SearchNearbyCamerasRequest(
                    parent="centers/demo", point=common_pb2.Point(latitude=lat, longitude=lon), radius_m=50
                ),
                metadata=md,
            )

        found = await search(37.5731, 126.9791)
        assert "centers/demo/cameras/c-9" not in [r.camera.name for r in found.results]  # DELETE [CAM-008]

        new_row = "3000000,NEW-1,서울특별시 종로구청,,,생활방범,1,,,,,,33.2500,126.5600,,,,"
        assert run_import(write(tmp_path / "more.csv", [new_row]), center.data_dir)[0] == 0
        for _ in range(40):
            found = await search(33.25, 126.56)
            if found.results:
                break
            await asyncio.sleep(0.25)
        assert [r.camera.name for r in found.results] == ["centers/demo/cameras/new-1"]


@pytest.mark.asyncio(loop_scope="session")
async def test_demo_inventory_has_the_spec_example(center: CenterProcess) -> None:
    """The demo seed holds the example rows of spec §12.2 at the distances the spec gives."""
    async with center.channel() as channel:
        found = await camera_pb2_grpc.CameraServiceStub(channel).SearchNearbyCameras(
            camera_pb2.SearchNearbyCamerasRequest(
                parent="centers/demo",
                point=common_pb2.Point(latitude=37.5862, longitude=126.9846),
                radius_m=850,
                limit=100,
            ),
            metadata=center.metadata("CENTER_OPERATOR"),
        )
    distances = {r.camera.management_number: r.distance_m for r in found.results}
    assert abs(distances["202630000000800463"] - 185.4) < 0.1
    assert abs(distances["202630000000800471"] - 839.6) < 0.1
