"""Column layouts of the national CCTV standard dataset (전국CCTV표준데이터) and their detection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

CURRENT_COLUMNS: tuple[str, ...] = (
    "개방자치단체코드",
    "관리번호",
    "관리기관명",
    "소재지도로명주소",
    "소재지지번주소",
    "설치목적구분",
    "카메라대수",
    "카메라화소수",
    "촬영방면정보",
    "보관일수",
    "설치연월",
    "관리기관전화번호",
    "WGS84위도",
    "WGS84경도",
    "데이터기준일자",
    "데이터갱신구분",
    "데이터갱신시점",
    "최종수정시점",
)

LEGACY_COLUMNS: tuple[str, ...] = (
    "관리기관명",
    "소재지도로명주소",
    "소재지지번주소",
    "설치목적구분",
    "카메라대수",
    "카메라화소수",
    "촬영방면정보",
    "보관일수",
    "설치년월",
    "관리기관전화번호",
    "위도",
    "경도",
    "데이터기준일자",
    "제공기관코드",
    "제공기관명",
)
LEGACY_OPTIONAL: tuple[str, ...] = ("관리번호",)


class Layout(Enum):
    CURRENT = "current"  # 18 columns, WGS84위도/WGS84경도, 개방자치단체코드
    LEGACY = "legacy"  # 위도/경도, 제공기관코드/제공기관명; 관리번호 may be absent


class HeaderError(ValueError):
    """The header row matches neither layout; the file cannot be imported."""


@dataclass(frozen=True, slots=True)
class Header:
    layout: Layout
    width: int  # number of columns every row must have
    positions: dict[str, int]  # canonical column name -> index

    def index(self, column: str) -> int | None:
        return self.positions.get(column)


def normalise_name(cell: str) -> str:
    """Header cell without BOM, surrounding whitespace or stray quotes."""
    return cell.replace("\ufeff", "").strip().strip('"').strip()


def detect_layout(header: Sequence[str]) -> Header:
    """Recognise the layout by column names (order-independent; extra columns are ignored)."""
    names = [normalise_name(c) for c in header]
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, i)
    if all(c in positions for c in CURRENT_COLUMNS):
        layout = Layout.CURRENT
        wanted: tuple[str, ...] = CURRENT_COLUMNS
    elif all(c in positions for c in LEGACY_COLUMNS):
        layout = Layout.LEGACY
        wanted = LEGACY_COLUMNS + LEGACY_OPTIONAL
    else:
        missing_current = [c for c in CURRENT_COLUMNS if c not in positions]
        missing_legacy = [c for c in LEGACY_COLUMNS if c not in positions]
        raise HeaderError(
            "header matches no known layout; missing for current layout: "
            f"{', '.join(missing_current)}; for legacy layout: {', '.join(missing_legacy)}"
        )
    return Header(layout, len(names), {c: positions[c] for c in wanted if c in positions})
