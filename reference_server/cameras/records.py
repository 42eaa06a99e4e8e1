"""Typed rows of the national CCTV dataset, and the per-row error value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from reference_server.cameras.layout import Layout
from reference_server.cameras.purposes import Purpose, purpose_from_label
from reference_server.geo.codes import AdminAgencyCode


@dataclass(frozen=True, slots=True)
class CameraRecord:
    """One dataset row (one site; it may stand for several cameras, see ``camera_count``).

    Empty optional columns are ``None``. Columns absent from a layout are ``None`` too.
    """

    management_number: str  # 관리번호 (derived for legacy rows without one, see csv_import)
    managing_agency: str  # 관리기관명
    road_address: str | None  # 소재지도로명주소
    lot_address: str | None  # 소재지지번주소
    purpose: str | None  # 설치목적구분, as written
    camera_count: int  # 카메라대수 (>= 1)
    pixels_10k: int | None  # 카메라화소수, in units of 10,000 pixels ("200" = 2 MP)
    direction: str | None  # 촬영방면정보
    retention_days: int | None  # 보관일수
    installed_year_month: tuple[int, int] | None  # 설치연월 / 설치년월 as (year, month)
    phone: str | None  # 관리기관전화번호
    latitude: float  # WGS84위도 / 위도
    longitude: float  # WGS84경도 / 경도
    data_date: date | None  # 데이터기준일자
    local_gov_code: AdminAgencyCode | None = None  # 개방자치단체코드 (current layout)
    update_kind: str | None = None  # 데이터갱신구분 (current layout)
    updated_at: datetime | None = None  # 데이터갱신시점 (current layout)
    last_modified_at: datetime | None = None  # 최종수정시점 (current layout)
    provider_code: str | None = None  # 제공기관코드 (legacy layout)
    provider_name: str | None = None  # 제공기관명 (legacy layout)
    management_number_derived: bool = False
    layout: Layout = Layout.CURRENT
    line_number: int = 0  # first physical line of the row in its file (header is line 1)

    @property
    def purpose_code(self) -> Purpose:
        return purpose_from_label(self.purpose)


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that could not be imported; the import goes on with the next row."""

    line_number: int
    reason: str
