"""The declaration of a reference center started with ``ansim serve --demo``.

The demo center keeps its development PKI and token issuer in its data directory (``pki/ca.pem``,
``pki/clients/<role>.pem|key``, ``pki/token-issuer.key`` with issuer ``ansim-demo``). This writes
``<data-dir>/conformance/vendor.yaml`` pointing at them with relative paths, so that::

    ansim conformance run --config <data-dir>/conformance/vendor.yaml --report-dir reports/

tests the demo center. The server (or a test launcher) calls :func:`write_demo_declaration` once it
knows its addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

DEMO_ISSUER = "ansim-demo"
DECLARATION_PATH = Path("conformance") / "vendor.yaml"
#: What the demo must publish for the spec's example dataset rows (설치연월 202005, 데이터기준일자
#: 2026-05-18, 관리기관전화번호 02-2148-3033, 데이터갱신시점 / 최종수정시점 in KST) [CAM-005] [CAM-007].
DATASET_EXAMPLE_FIELDS = {
    "install_year_month": "2020-05",
    "data_reference_date": "2026-05-18",
    "managing_agency_phone": "02-2148-3033",
    "data_update_time": "2026-05-19T13:58:23Z",
    "last_modified_time": "2026-05-18T06:24:18Z",
}


def demo_declaration(
    address: str,
    *,
    mtls_address: str | None = None,
    profiles: Sequence[str] = ("center-core",),
    center: str = "centers/demo",
    version: str = "demo",
    insecure: bool = False,
    camera_location: tuple[float, float] = (37.5729, 126.9794),
    features: Sequence[str] = ("server-reflection", "live-read-isolation"),
    danger_exit_absence_seconds: int = 10,
) -> dict[str, Any]:
    """Declaration data for a demo center (paths relative to ``<data-dir>/conformance/``)."""
    pki = Path("..") / "pki"
    tls: dict[str, Any]
    if insecure:
        tls = {"insecure": True}
    else:
        tls = {
            "ca_file": str(pki / "ca.pem"),
            "server_name": "localhost",
            "client_certs": {
                role: {
                    "cert_file": str(pki / "clients" / f"{role.lower()}.pem"),
                    "key_file": str(pki / "clients" / f"{role.lower()}.key"),
                }
                for role in ("POLICE_OFFICER", "FIRE_OFFICER", "PEER_CENTER")
            },
        }
        if mtls_address:
            tls["mtls_target"] = mtls_address
    return {
        "metadata": {"vendor": "Ansim Interop", "product": "reference center (demo)", "version": version},
        "target": address,
        "tls": tls,
        "credentials": {
            "test_issuer": {"issuer": DEMO_ISSUER, "private_key_file": str(pki / "token-issuer.key")}
        },
        "profiles": list(profiles),
        "features": list(features),
        "fixtures": {
            "center": center,
            "agencies": {"POLICE_112": "agencies/seoul-112", "FIRE_119": "agencies/seoul-119"},
            "camera_location": {"latitude": camera_location[0], "longitude": camera_location[1]},
            # The demo center trusts the demo PKI's PEER_CENTER certificate as this peer (federation).
            **({"peer_center": "centers/demo-peer"} if "federation" in profiles else {}),
            # The two example rows of spec §12.2 / §12.9 that the demo seeds, as they must be published.
            "dataset_cameras": [
                {"management_number": number, "expected": dict(DATASET_EXAMPLE_FIELDS)}
                for number in ("202630000000800463", "202630000000800471")
            ],
        },
        "test_retention_seconds": 5,
        "test_timers": {"danger_exit_absence_seconds": danger_exit_absence_seconds},
    }


def write_demo_declaration(data_dir: Path, address: str, **options: Any) -> Path:
    """Write ``<data_dir>/conformance/vendor.yaml`` for the demo center; returns its path."""
    path = data_dir / DECLARATION_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Written by the demo center for `ansim conformance run`.\n"
    text += yaml.safe_dump(demo_declaration(address, **options), sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path
