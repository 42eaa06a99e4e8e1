"""Typed place codes. Korea has several code systems for the same municipality; never mix them.

* ``StatisticsAreaCode`` — Statistics Korea (SGIS) area code, 5 digits (종로구 11010). The only
  code in the bundled boundary dataset.
* ``LegalDongCode`` — 법정동 code, 10 digits (종로구 1111000000); first five digits identify the
  municipality (11110).
* ``AdminAgencyCode`` — 행정기관 code, 7 digits (종로구청 3000000); used as 개방자치단체코드 in the
  national CCTV dataset.
"""

from __future__ import annotations

from dataclasses import dataclass


def _check_digits(value: str, length: int, kind: str) -> None:
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise ValueError(f"{kind} must be {length} ASCII digits, got {value!r}")


@dataclass(frozen=True, slots=True, order=True)
class StatisticsAreaCode:
    """Statistics Korea area code (5 digits); first two digits are the SGIS 시도 code."""

    value: str

    def __post_init__(self) -> None:
        _check_digits(self.value, 5, "statistics area code")

    @property
    def province(self) -> str:
        """Two-digit SGIS 시도 prefix (11 = Seoul, 31 = Gyeonggi, 39 = Jeju)."""
        return self.value[:2]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, order=True)
class LegalDongCode:
    """법정동 code (10 digits: 시도 2 + 시군구 3 + 읍면동 3 + 리 2)."""

    value: str

    def __post_init__(self) -> None:
        _check_digits(self.value, 10, "legal-dong code")

    @property
    def municipality_prefix(self) -> str:
        """First five digits, identifying the 시군구."""
        return self.value[:5]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, order=True)
class AdminAgencyCode:
    """행정기관 code (7 digits), e.g. 3000000 for 종로구청."""

    value: str

    def __post_init__(self) -> None:
        _check_digits(self.value, 7, "administrative agency code")

    def __str__(self) -> str:
        return self.value
