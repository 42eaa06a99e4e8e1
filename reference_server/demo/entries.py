"""Directory entries of the demo centers, with their real 2018 municipality boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import shapely
from ansim.v1 import common_pb2, directory_pb2
from shapely.geometry.base import BaseGeometry

from reference_server.domain.directory.geometry import geometry_area
from reference_server.geo.municipalities import Municipality, load_municipalities

SPEC_VERSION = "1.0.0-alpha.1"


@dataclass(frozen=True)
class DemoCenter:
    center_id: str
    display_ko: str
    display_en: str
    #: Statistics Korea codes of the municipalities served, with their 법정동 시군구 codes.
    municipalities: tuple[tuple[str, str], ...]
    police: str
    fire: str


CENTERS = (
    DemoCenter(
        "seoul-jongno",
        "종로구 스마트도시통합센터",
        "Jongno-gu Smart City Center",
        (("11010", "11110"),),
        "seoul-112",
        "seoul-119",
    ),
    DemoCenter(
        "seoul-geumcheon",
        "금천구 스마트도시통합센터",
        "Geumcheon-gu Smart City Center",
        (("11180", "11545"),),
        "seoul-112",
        "seoul-119",
    ),
    DemoCenter(
        "anyang",
        "안양시 스마트도시통합센터",
        "Anyang Smart City Integrated Center",
        (("31041", "41171"), ("31042", "41173")),
        "gyeonggi-south-112",
        "gyeonggi-119",
    ),
    DemoCenter(
        "busan-haeundae",
        "해운대구 스마트도시통합센터",
        "Haeundae-gu Smart City Center",
        (("21090", "26350"),),
        "busan-112",
        "busan-119",
    ),
)


@lru_cache(maxsize=1)
def municipalities() -> dict[str, Municipality]:
    return {m.statistics_code.value: m for m in load_municipalities()}


def boundary(codes: tuple[str, ...]) -> BaseGeometry:
    return shapely.union_all([municipalities()[c].geometry for c in codes])


def entry(
    name: str,
    display_ko: str,
    display_en: str,
    area: common_pb2.Area,
    target: str,
    server_name: str,
    fingerprints: list[str],
    *,
    municipalities_: list[common_pb2.AdministrativeCodes],
    police: str,
    fire: str,
    profiles: tuple[str, ...] = ("center-core", "child-safety", "safe-trip", "federation"),
) -> directory_pb2.CenterEntry:
    return directory_pb2.CenterEntry(
        name=name,
        display_name_ko=display_ko,
        display_name_en=display_en,
        municipalities=municipalities_,
        service_area=area,
        endpoints=[directory_pb2.CenterEndpoint(target=target, tls_server_name=server_name)],
        certificates=[directory_pb2.CertificatePin(sha256_fingerprint=f) for f in fingerprints],
        supported_profiles=list(profiles),
        spec_version=SPEC_VERSION,
        contacts=[
            directory_pb2.CenterContact(
                kind=directory_pb2.CENTER_CONTACT_KIND_OPERATIONS,
                display_name=f"{display_ko} 관제실",
                phone="02-0000-0000",
            )
        ],
        agencies=[
            directory_pb2.ServingAgency(agency=f"agencies/{police}", kind=common_pb2.AGENCY_KIND_POLICE_112),
            directory_pb2.ServingAgency(agency=f"agencies/{fire}", kind=common_pb2.AGENCY_KIND_FIRE_119),
        ],
    )


def center_entry(
    center: DemoCenter, target: str, server_name: str, fingerprints: list[str]
) -> directory_pb2.CenterEntry:
    codes = tuple(c for c, _ in center.municipalities)
    return entry(
        f"centers/{center.center_id}",
        center.display_ko,
        center.display_en,
        geometry_area(boundary(codes)),
        target,
        server_name,
        fingerprints,
        municipalities_=[
            common_pb2.AdministrativeCodes(statistics_code=s, legal_dong_sigungu_code=legal)
            for s, legal in center.municipalities
        ],
        police=center.police,
        fire=center.fire,
    )
