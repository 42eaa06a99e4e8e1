"""The vendor declaration (``vendor.yaml``): what a vendor claims and what the suite needs to test it.

Example (relative paths are relative to the file; see conformance/README.md for every field)::

    metadata: {vendor: Example Co., product: SafeCity Center, version: 4.2.0}
    target: center.example.go.kr:443
    tls:
      ca_file: pki/ca.pem
      server_name: center.example.go.kr
      client_certs:
        POLICE_OFFICER: {cert_file: pki/police.pem, key_file: pki/police.key}
    credentials:
      test_issuer: {issuer: https://conformance.ansim.test, private_key_file: pki/issuer.key}
    profiles: [center-core]
    features: [server-reflection]
    fixtures:
      center: centers/example
      agencies: {POLICE_112: agencies/example-112, FIRE_119: agencies/example-119}
      camera_location: {latitude: 37.5729, longitude: 126.9794}
    test_retention_seconds: 5
    test_timers: {danger_exit_absence_seconds: 10}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ansim_sdk.catalogue import PROFILES
from conformance.profiles import FEATURES, ROLE_NAMES

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
_ID = r"[a-z0-9][a-z0-9-]{0,62}"
CENTER_NAME = rf"^centers/{_ID}$"
AGENCY_NAME = rf"^agencies/{_ID}$"
SECRET = "<redacted>"


class DeclarationError(ValueError):
    """The declaration is missing, unreadable or wrong; the message lists every problem, one a line."""


def check_target(value: str) -> str:
    match = _HOST_PORT.match(value)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. center.example.go.kr:443)")
    return value


def _check_role(role: str) -> str:
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLE_NAMES)}")
    return role


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Section):
    """Who declares what (copied to every report)."""

    vendor: str = Field(min_length=1)
    product: str = Field(min_length=1)
    version: str = Field(min_length=1)
    contact: str = ""


class ClientCert(_Section):
    """A TLS client certificate and its private key (PEM files)."""

    cert_file: Path
    key_file: Path


class Tls(_Section):
    """How to reach the target: TLS (default), mutual TLS per role, or ``insecure: true``."""

    #: Plain-text connection to a development server (refuses LIVE traffic, GEN-013). A run against
    #: an insecure target cannot pass SEC-001.
    insecure: bool = False
    #: CA bundle that signs the target's certificate; empty = the system's roots.
    ca_file: Path | None = None
    #: Host name to verify the target's certificate against when it differs from the target host.
    server_name: str | None = None
    #: Role → client certificate presented on that role's connections (mTLS); "default" for all others.
    client_certs: dict[str, ClientCert] = Field(default_factory=dict)
    #: HOST:PORT of a separate mutual-TLS listener, if the target has one: connections that present
    #: a client certificate go there, all others to ``target``.
    mtls_target: str | None = None

    @field_validator("mtls_target")
    @classmethod
    def _mtls_target(cls, value: str | None) -> str | None:
        return None if value is None else check_target(value)

    @field_validator("client_certs")
    @classmethod
    def _roles(cls, value: dict[str, ClientCert]) -> dict[str, ClientCert]:
        for role in value:
            if role != "default":
                _check_role(role)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Tls:
        if self.insecure and (self.ca_file or self.server_name or self.client_certs or self.mtls_target):
            raise ValueError("insecure: true excludes ca_file, server_name, client_certs and mtls_target")
        if self.mtls_target and not self.client_certs:
            raise ValueError("mtls_target needs client_certs")
        return self


class TestIssuer(_Section):
    """A token issuer the target trusts for this run; the suite mints every token it needs with it,
    including expired, forged and role-less ones for negative tests."""

    __test__ = False  # not a pytest class

    #: The ``iss`` claim; the target maps it to the issuer's public key.
    issuer: str = Field(min_length=1)
    #: EC P-256 private key (PKCS#8 PEM), as a file or inline; exactly one of the two.
    private_key_file: Path | None = None
    private_key_pem: SecretStr | None = None
    #: Key id (``kid`` header) if the target selects keys by it.
    key_id: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> TestIssuer:
        if (self.private_key_file is None) == (self.private_key_pem is None):
            raise ValueError("give exactly one of private_key_file and private_key_pem")
        return self


class Credentials(_Section):
    """Bearer tokens: a test issuer (preferred) and/or fixed tokens per role."""

    test_issuer: TestIssuer | None = None
    #: Role → a bearer token for that role (valid for the whole run).
    tokens: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("tokens")
    @classmethod
    def _roles(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for role in value:
            _check_role(role)
        return value

    @model_validator(mode="after")
    def _some(self) -> Credentials:
        if self.test_issuer is None and not self.tokens:
            raise ValueError("give a test_issuer (preferred) or tokens per role")
        return self


class LatLon(_Section):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class ChildSafetyFixtures(_Section):
    """How the suite gets wards, tags and readers: created over the API, or pre-provisioned."""

    provisioning: Literal["api", "fixed"] = "api"
    wards: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    readers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fixed_has_ids(self) -> ChildSafetyFixtures:
        if self.provisioning == "fixed" and not (self.wards and self.tags and self.readers):
            raise ValueError("provisioning: fixed needs wards, tags and readers")
        return self


class DatasetCamera(_Section):
    """One row of the center's CCTV dataset and what the center must publish for it (CAM-005,
    CAM-007): ``expected`` maps Camera field paths (proto names, dotted) to their proto3 JSON values,
    e.g. ``install_year_month: 2020-05``, ``data_update_time: 2026-05-19T13:58:23Z``."""

    #: 관리번호 exactly as in the dataset.
    management_number: str = Field(min_length=1)
    expected: dict[str, str | int | float] = Field(min_length=1)


class Fixtures(_Section):
    """Data in the target that the cases rely on."""

    #: The target center's resource name, ``centers/{center}``.
    center: str | None = Field(default=None, pattern=CENTER_NAME)
    #: AgencyKind name without AGENCY_KIND_ → ``agencies/{agency}`` served by the center.
    agencies: dict[Literal["POLICE_112", "FIRE_119"], str] = Field(default_factory=dict)
    #: A point inside the center's service area where SearchNearbyCameras finds cameras.
    camera_location: LatLon | None = None
    #: A point inside the center's service area (defaults to camera_location).
    service_area_location: LatLon | None = None
    #: A peer center's name, for federation cases.
    peer_center: str | None = Field(default=None, pattern=CENTER_NAME)
    child_safety: ChildSafetyFixtures | None = None
    #: Rows of the center's CCTV dataset with the published values they must become (CAM-005, CAM-007).
    dataset_cameras: list[DatasetCamera] = Field(default_factory=list)

    @field_validator("agencies")
    @classmethod
    def _agency_names(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, name in value.items():
            if not re.match(AGENCY_NAME, name):
                raise ValueError(f"{kind}: {name!r} is not agencies/{{agency}}")
        return value


class DeclaredTestTimers(_Section):
    """TEST-mode timers in force that the wire does not show (the others, e.g. a dispatch's or a
    notification's ack_deadline, the cases read from the resources)."""

    #: The TEST exit absence of danger zones, which replaces a zone's exit_absence for TEST-mode
    #: sightings [TAG-022].
    danger_exit_absence_seconds: int | None = Field(default=None, ge=5, le=60)


class FederationHarnessConfig(_Section):
    """Where the suite plays the national directory and peer centers for the center under test as
    a home center (conformance/harness/federation/README.md): the TEST deployment must use
    ``listen`` as its directory endpoint and trust ``pki_dir/ca.pem`` for the directory and peers."""

    #: HOST:PORT of the harness directory; peers listen on the next 8 ports (PORT+1 … PORT+8).
    listen: str
    #: Directory of the harness PKI and directory keys (created when missing, then reused).
    pki_dir: Path = Path("federation-harness-pki")
    #: CA of the center's own federation client certificate, when it does not use the harness's
    #: ``center-client.pem`` (the harness peers require a client certificate).
    center_client_ca: Path | None = None
    #: The center's own federation client certificate, pinned in its entry of the harness directory.
    center_certificate: Path | None = None
    #: The TEST deployment's registry reload interval in force [DIR-021] (at most 15 minutes).
    registry_reload_seconds: int = Field(default=900, ge=1, le=900)
    #: The TEST deployment's first recovery retry after a fallback [FED-015] (at most 30 s).
    recovery_first_seconds: int = Field(default=30, ge=1, le=30)

    _listen = field_validator("listen")(check_target)


class Declaration(_Section):
    """A vendor's conformance declaration."""

    metadata: Metadata
    target: str
    tls: Tls = Tls()
    credentials: Credentials
    profiles: list[str] = Field(min_length=1)
    features: list[str] = Field(default_factory=list)
    fixtures: Fixtures = Fixtures()
    #: The retention period in force for location fixes of TEST-mode emergencies and trips [PRV-015].
    test_retention_seconds: int | None = Field(default=None, ge=5, le=86_400)
    #: TEST-mode timers the cases cannot read from the wire.
    test_timers: DeclaredTestTimers = DeclaredTestTimers()
    #: The federation harness (home-side federation cases); None: those cases are skipped.
    federation_harness: FederationHarnessConfig | None = None

    _target = field_validator("target")(check_target)

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in PROFILES]
        if unknown:
            raise ValueError(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
        if len(set(value)) != len(value):
            raise ValueError("a profile is listed twice")
        return value

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {', '.join(FEATURES)}")
        return value

    @model_validator(mode="after")
    def _fixtures_for_profiles(self) -> Declaration:
        needs_center = {"center-core", "child-safety", "safe-trip", "federation", "statistics"}
        if needs_center & set(self.profiles) and self.fixtures.center is None:
            raise ValueError("fixtures.center is required for the declared center profiles")
        if {"center-core", "safe-trip"} & set(self.profiles) and self.test_retention_seconds is None:
            raise ValueError(
                "test_retention_seconds is required for center-core and safe-trip: state the retention "
                "period in force for TEST-mode location fixes [PRV-015]"
            )
        if "center-core" in self.profiles and self.fixtures.camera_location is None:
            raise ValueError("fixtures.camera_location is required for center-core (SearchNearbyCameras)")
        return self

    def redacted(self) -> dict[str, Any]:
        """The declaration as JSON-able data with every secret replaced, for reports."""
        data = self.model_dump(mode="json", exclude_none=True)
        creds = data.get("credentials", {})
        if "tokens" in creds:
            creds["tokens"] = dict.fromkeys(creds["tokens"], SECRET)
        issuer = creds.get("test_issuer")
        if issuer and "private_key_pem" in issuer:
            issuer["private_key_pem"] = SECRET
        return data

    def with_base(self, base: Path) -> Declaration:
        """A copy with every relative file path made relative to ``base``; missing files are errors."""
        problems: list[str] = []

        def fix(path: Path | None, where: str) -> Path | None:
            if path is None:
                return None
            full = path if path.is_absolute() else base / path
            if not full.is_file():
                problems.append(f"{where}: file {full} does not exist")
            return full

        certs = {
            role: ClientCert(
                cert_file=fix(c.cert_file, f"tls.client_certs.{role}.cert_file") or c.cert_file,
                key_file=fix(c.key_file, f"tls.client_certs.{role}.key_file") or c.key_file,
            )
            for role, c in self.tls.client_certs.items()
        }
        tls = self.tls.model_copy(
            update={"ca_file": fix(self.tls.ca_file, "tls.ca_file"), "client_certs": certs}
        )
        creds = self.credentials
        if creds.test_issuer is not None:
            key = fix(creds.test_issuer.private_key_file, "credentials.test_issuer.private_key_file")
            creds = creds.model_copy(
                update={"test_issuer": creds.test_issuer.model_copy(update={"private_key_file": key})}
            )
        harness = self.federation_harness
        if harness is not None:
            pki_dir = harness.pki_dir if harness.pki_dir.is_absolute() else base / harness.pki_dir
            harness = harness.model_copy(
                update={
                    "pki_dir": pki_dir,
                    "center_client_ca": fix(harness.center_client_ca, "federation_harness.center_client_ca"),
                    "center_certificate": fix(
                        harness.center_certificate, "federation_harness.center_certificate"
                    ),
                }
            )
        if problems:
            raise DeclarationError("\n".join(problems))
        return self.model_copy(update={"tls": tls, "credentials": creds, "federation_harness": harness})


def _format(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "\n".join(lines)


def parse_declaration(data: Any, base: Path | None = None) -> Declaration:
    """Validate declaration data; DeclarationError lists every problem as ``path: message``."""
    if not isinstance(data, dict):
        raise DeclarationError("(top level): the declaration must be a mapping")
    try:
        declaration = Declaration.model_validate(data)
    except ValidationError as error:
        raise DeclarationError(_format(error)) from None
    return declaration.with_base(base) if base is not None else declaration


def load_declaration(path: Path) -> Declaration:
    """Read and validate ``vendor.yaml``; relative paths in it are relative to its directory."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DeclarationError(f"{path}: cannot read the declaration: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise DeclarationError(f"{path}: not valid YAML: {error}") from None
    try:
        return parse_declaration(data, path.parent)
    except DeclarationError as error:
        raise DeclarationError(f"{path}:\n{error}") from None
