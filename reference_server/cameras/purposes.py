"""설치목적구분 (installation purpose) as a small integer code, for compact filtering."""

from __future__ import annotations

from enum import IntEnum


class Purpose(IntEnum):
    """Installation purposes seen in the national CCTV dataset; anything else is OTHER."""

    OTHER = 0
    CRIME_PREVENTION = 1  # 생활방범
    CHILD_PROTECTION = 2  # 어린이보호
    FACILITY_SAFETY = 3  # 시설안전
    TRAFFIC_ENFORCEMENT = 4  # 교통단속
    PARKING_ENFORCEMENT = 5  # 주정차단속
    DISASTER = 6  # 재난재해
    LITTERING = 7  # 쓰레기단속
    TRAFFIC_INFO = 8  # 교통정보수집
    VEHICLE_CRIME = 9  # 차량방범

    @property
    def label(self) -> str:
        """The dataset's Korean label ("기타" for OTHER)."""
        return _LABELS[self]


_LABELS: dict[Purpose, str] = {
    Purpose.OTHER: "기타",
    Purpose.CRIME_PREVENTION: "생활방범",
    Purpose.CHILD_PROTECTION: "어린이보호",
    Purpose.FACILITY_SAFETY: "시설안전",
    Purpose.TRAFFIC_ENFORCEMENT: "교통단속",
    Purpose.PARKING_ENFORCEMENT: "주정차단속",
    Purpose.DISASTER: "재난재해",
    Purpose.LITTERING: "쓰레기단속",
    Purpose.TRAFFIC_INFO: "교통정보수집",
    Purpose.VEHICLE_CRIME: "차량방범",
}
_BY_LABEL = {label: purpose for purpose, label in _LABELS.items()}


def purpose_from_label(label: str | None) -> Purpose:
    """Map a 설치목적구분 value to its code; unknown or empty values map to OTHER."""
    if not label:
        return Purpose.OTHER
    return _BY_LABEL.get(label.replace(" ", ""), Purpose.OTHER)
