"""Round trip: rows written in the national format, imported with ``ansim cameras import`` (parsed in
a child process, written in batches), come back from a real center's GetCamera as the spec's mapping
of exactly those rows [CAM-001 … CAM-007], and a re-import of the same file changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from ansim.v1 import camera_pb2, camera_pb2_grpc
from typer.testing import CliRunner

from ansim_sdk.cli import app
from reference_server.cameras.csv_export import write_csv
from reference_server.cameras.records import CameraRecord
from reference_server.cameras.synthetic import synthetic_cameras
from reference_server.domain.cameras import parse_worker
from reference_server.domain.cameras.convert import camera_id, to_camera
from reference_server.geo.municipalities import load_municipalities
from tests.support.center import CenterProcess, start_center

ROWS = 150
#: Several messages from the parsing child (its default batch is larger than the file).
CHILD_BATCH = 40


def run_import(path: Path, data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cameras", "import", str(path), "--data-dir", str(data_dir), "-q"])
    return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[CameraRecord], Path]:
    # Areas away from 종로구: the demo seed writes its own rows over imported ones of its numbers.
    records = list(synthetic_cameras(ROWS, seed=7, municipalities=load_municipalities()[-3:]))
    path = tmp_path_factory.mktemp("roundtrip") / "cctv.csv"
    write_csv(records, path)
    return records, path


@pytest.fixture(scope="module")
def center(
    source: tuple[list[CameraRecord], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CenterProcess]:
    data = tmp_path_factory.mktemp("roundtrip-center")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_worker, "BATCH_ITEMS", CHILD_BATCH)
        code, out = run_import(source[1], data)
    assert code == 0 and f"imported {ROWS}, updated 0, unchanged 0, rejected 0" in out, out
    process = start_center(data)
    yield process
    process.terminate()


@pytest.mark.asyncio(loop_scope="session")
async def test_get_camera_returns_the_source_rows(
    source: tuple[list[CameraRecord], Path], center: CenterProcess
) -> None:
    records, _ = source
    async with center.channel() as channel:
        stub = camera_pb2_grpc.CameraServiceStub(channel)
        md = center.metadata("CENTER_OPERATOR")
        got = await asyncio.gather(
            *(
                stub.GetCamera(
                    camera_pb2.GetCameraRequest(
                        name=f"centers/demo/cameras/{camera_id(r.management_number)}"
                    ),
                    metadata=md,
                )
                for r in records
            )
        )
    for record, camera in zip(records, got, strict=True):
        # The cells themselves, not only the mapping's output [CAM-002, CAM-005, CAM-006, CAM-007].
        assert camera.management_number == record.management_number
        assert record.local_gov_code is not None
        assert camera.admin_codes.agency_code == record.local_gov_code.value
        assert (camera.location.latitude, camera.location.longitude) == (record.latitude, record.longitude)
        assert camera.managing_agency_name == record.managing_agency
        assert camera.address.road_address == (record.road_address or "")
        assert camera.purpose_label == (record.purpose or "")
        assert camera.camera_count == record.camera_count
        if record.updated_at is not None:
            utc = record.updated_at - timedelta(hours=9)
            assert camera.data_update_time.ToDatetime() == utc
        # Everything else is the spec's mapping of this row; the store adds name and times.
        served = camera_pb2.Camera()
        served.CopyFrom(camera)
        served.ClearField("name")
        served.ClearField("create_time")
        served.ClearField("update_time")
        assert served == to_camera(record), record.line_number


def test_reimport_of_the_same_file_changes_nothing(
    source: tuple[list[CameraRecord], Path], center: CenterProcess
) -> None:
    code, out = run_import(source[1], center.data_dir)
    assert code == 0 and f"imported 0, updated 0, unchanged {ROWS}, rejected 0" in out, out
