"""A dataset row (``CameraRecord``) as the wire ``Camera``: the mapping of spec §12.9.

Everything here is pure: the id of a management number [CAM-001], the purpose table [CAM-003], the
counts and codes [CAM-002, CAM-004], the text forms of months, dates and phone numbers [CAM-005],
the location box [CAM-006] and KST → UTC [CAM-007].
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone

from ansim.v1 import camera_pb2
from google.protobuf import timestamp_pb2

from reference_server.cameras.fields import KOREA_LAT, KOREA_LON
from reference_server.cameras.records import CameraRecord

KST = timezone(timedelta(hours=9))
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NOT_ID_CHAR = re.compile(r"[^a-z0-9-]")
_PHONE = re.compile(r"^([0-9]{2,4}-?[0-9]{3,4}-?[0-9]{4})?$")
MAX_CAMERA_COUNT = 1000
MAX_PIXELS_10K = 10_000
MAX_RETENTION_DAYS = 3650

P = camera_pb2
#: 설치목적구분 label (spaces removed) → CameraPurpose, the table of spec §12.9 [CAM-003].
PURPOSE_TABLE: dict[str, int] = {
    "생활방범": P.CAMERA_PURPOSE_CRIME_PREVENTION,
    "방범": P.CAMERA_PURPOSE_CRIME_PREVENTION,
    "어린이보호": P.CAMERA_PURPOSE_CHILD_PROTECTION,
    "어린이보호구역": P.CAMERA_PURPOSE_CHILD_PROTECTION,
    "시설안전": P.CAMERA_PURPOSE_FACILITY_SAFETY,
    "시설물관리": P.CAMERA_PURPOSE_FACILITY_SAFETY,
    "교통단속": P.CAMERA_PURPOSE_TRAFFIC_ENFORCEMENT,
    "과속단속": P.CAMERA_PURPOSE_TRAFFIC_ENFORCEMENT,
    "신호위반단속": P.CAMERA_PURPOSE_TRAFFIC_ENFORCEMENT,
    "주정차단속": P.CAMERA_PURPOSE_PARKING_ENFORCEMENT,
    "불법주정차": P.CAMERA_PURPOSE_PARKING_ENFORCEMENT,
    "재난재해": P.CAMERA_PURPOSE_DISASTER,
    "재난감시": P.CAMERA_PURPOSE_DISASTER,
    "산불감시": P.CAMERA_PURPOSE_DISASTER,
    "쓰레기단속": P.CAMERA_PURPOSE_LITTERING_ENFORCEMENT,
    "쓰레기무단투기": P.CAMERA_PURPOSE_LITTERING_ENFORCEMENT,
    "교통정보수집": P.CAMERA_PURPOSE_TRAFFIC_INFORMATION,
    "차량방범": P.CAMERA_PURPOSE_VEHICLE_CRIME_PREVENTION,
}

#: 데이터갱신구분 → DatasetUpdateKind (spec §12.9).
UPDATE_KINDS: dict[str, int] = {
    "I": P.DATASET_UPDATE_KIND_INSERT,
    "신규": P.DATASET_UPDATE_KIND_INSERT,
    "등록": P.DATASET_UPDATE_KIND_INSERT,
    "U": P.DATASET_UPDATE_KIND_UPDATE,
    "수정": P.DATASET_UPDATE_KIND_UPDATE,
    "변경": P.DATASET_UPDATE_KIND_UPDATE,
    "D": P.DATASET_UPDATE_KIND_DELETE,
    "삭제": P.DATASET_UPDATE_KIND_DELETE,
}


class ConversionError(ValueError):
    """A row that cannot be published as a Camera (reported like a bad row)."""


def camera_id(management_number: str) -> str:
    """The camera id of a management number: lowercase, other characters → "-" [CAM-001]."""
    return _NOT_ID_CHAR.sub("-", management_number.lower())


@functools.lru_cache(maxsize=65_536)  # few distinct values per dataset
def purpose_of(label: str | None) -> int:
    """CameraPurpose of a 설치목적구분 label; any label not in the table is OTHER [CAM-003]."""
    if not label:
        return int(P.CAMERA_PURPOSE_OTHER)
    return PURPOSE_TABLE.get(label.replace(" ", ""), int(P.CAMERA_PURPOSE_OTHER))


@functools.lru_cache(maxsize=65_536)  # few distinct values per dataset
def update_kind_of(value: str | None) -> int:
    if not value:
        return int(P.DATASET_UPDATE_KIND_UNSPECIFIED)
    return UPDATE_KINDS.get(value.strip().upper() if value.strip().isascii() else value.strip(), 0)


@functools.lru_cache(maxsize=65_536)  # few distinct values per dataset
def phone_of(value: str | None) -> str:
    """관리기관전화번호 as digits and hyphens ("(033)249-3034" → "033-249-3034"), "" if unusable [CAM-005]."""
    if not value:
        return ""
    groups = re.findall(r"\d+", value)
    text = "-".join(groups)
    return text if groups and _PHONE.match(text) else ""


def kst_timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """A dataset time (naive, Korea Standard Time) as a UTC Timestamp [CAM-007]."""
    seconds, nanos = _utc_seconds(moment)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_KST = datetime(1970, 1, 1, 9)  # the Unix epoch in naive Korea Standard Time (UTC+9, no DST)


def _utc_seconds(moment: datetime) -> tuple[int, int]:
    """(seconds, nanos) since the Unix epoch: integer arithmetic, no time-zone conversion per row."""
    delta = moment - (_EPOCH_KST if moment.tzinfo is None else _EPOCH)
    return delta.days * 86_400 + delta.seconds, delta.microseconds * 1000


def has_valid_location(latitude: float | None, longitude: float | None) -> bool:
    """Both present and inside latitude [32.5, 39], longitude [124, 132] [CAM-006]."""
    if latitude is None or longitude is None:
        return False
    return KOREA_LAT[0] <= latitude <= KOREA_LAT[1] and KOREA_LON[0] <= longitude <= KOREA_LON[1]


def to_camera(record: CameraRecord) -> camera_pb2.Camera:
    """The Camera for a row, without name, create_time and update_time (the store sets those)."""
    if record.camera_count > MAX_CAMERA_COUNT:
        raise ConversionError(f"카메라대수 {record.camera_count} exceeds {MAX_CAMERA_COUNT}")
    number = record.management_number
    if len(number) > 64:
        raise ConversionError(f"관리번호 longer than 64 characters: {number[:20]!r}…")
    if not ID_PATTERN.match(camera_id(number)):
        raise ConversionError(
            f"관리번호 {number!r} gives no valid camera id (must start with a letter or digit)"
        )
    camera = camera_pb2.Camera(
        management_number=number,
        managing_agency_name=record.managing_agency[:100],
        purpose=purpose_of(record.purpose),  # type: ignore[arg-type]
        purpose_label=(record.purpose or "")[:50],
        camera_count=max(1, record.camera_count),
        pixels_10k=record.pixels_10k if record.pixels_10k and record.pixels_10k <= MAX_PIXELS_10K else 0,
        view_direction=(record.direction or "")[:200],
        retention_days=record.retention_days
        if record.retention_days and record.retention_days <= MAX_RETENTION_DAYS
        else 0,
        managing_agency_phone=phone_of(record.phone),
        data_update_kind=update_kind_of(record.update_kind),  # type: ignore[arg-type]
        provider_agency_name=(record.provider_name or "")[:100],
    )
    if record.local_gov_code is not None:
        camera.admin_codes.agency_code = record.local_gov_code.value
    if record.provider_code and re.fullmatch(r"[0-9]{7}", record.provider_code):
        camera.provider_agency_code = record.provider_code
    if record.road_address:
        camera.address.road_address = record.road_address[:200]
    if record.lot_address:
        camera.address.lot_address = record.lot_address[:200]
    if record.installed_year_month is not None:
        year, month = record.installed_year_month
        camera.install_year_month = f"{year:04d}-{month:02d}"
    if has_valid_location(record.latitude, record.longitude):
        point = camera.location
        point.latitude, point.longitude = record.latitude, record.longitude
    if record.data_date is not None:
        camera.data_reference_date = record.data_date.isoformat()
    if record.updated_at is not None:
        camera.data_update_time.seconds, camera.data_update_time.nanos = _utc_seconds(record.updated_at)
    if record.last_modified_at is not None:
        camera.last_modified_time.seconds, camera.last_modified_time.nanos = _utc_seconds(
            record.last_modified_at
        )
    return camera


def searchable(camera: camera_pb2.Camera) -> bool:
    """Found near anything and grantable: has a location and is not marked DELETE [CAM-006, CAM-008]."""
    return camera.HasField("location") and camera.data_update_kind != P.DATASET_UPDATE_KIND_DELETE
