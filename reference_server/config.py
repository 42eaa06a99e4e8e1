"""Settings of one reference center: file (YAML or TOML) + ``ANSIM_`` environment, checked at start-up.

Precedence, highest first: explicit overrides (command-line options), environment variables
(``ANSIM_CENTER_ID``, nested with ``__``: ``ANSIM_TLS__SERVER_CERT``, ``ANSIM_TIMERS__RENOTIFY_COUNT``),
the config file, defaults. Unknown keys in the file are rejected. Durations accept seconds or ISO
8601 (``PT30S``, ``P7D``).

Example ``center.yaml``::

    center_id: seoul-jongno
    display_name: 종로구 스마트도시통합센터
    listen: 0.0.0.0:50051
    data_dir: /var/lib/ansim
    tls:
      server_cert: /etc/ansim/server.pem
      server_key: /etc/ansim/server.key
      client_ca: /etc/ansim/clients-ca.pem
    tokens:
      issuers:
        https://idp.jongno.go.kr: /etc/ansim/idp.pub.pem
"""

from __future__ import annotations

import contextvars
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from ansim.v1 import common_pb2
from pydantic import BaseModel, ConfigDict, Field, FilePath, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
#: Role names as written in config and in the ``role`` token claim: the Role value name without ROLE_.
_ROLE_VALUES = common_pb2.Role.DESCRIPTOR.values
ROLE_NAMES = frozenset(v.name.removeprefix("ROLE_") for v in _ROLE_VALUES if v.number != 0)

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("ansim_config_file", default=None)


class ConfigError(ValueError):
    """Settings are missing or wrong; the message lists every problem, one per line."""


def _check_host_port(value: str) -> str:
    match = _HOST_PORT.match(value)
    if not match or not 0 <= int(match.group(2)) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:50051; port 0 picks a free port)")
    return value


def _check_roles(values: frozenset[str]) -> frozenset[str]:
    unknown = sorted(set(values) - ROLE_NAMES)
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; known: {sorted(ROLE_NAMES)}")
    return values


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Section):
    """Transport security. Without ``insecure_dev`` a server certificate and key are required.

    gRPC Python cannot ask for an *optional* client certificate, so a center has two listeners: the
    main one (``listen``, server-authenticated TLS, for apps, guardians, gateways, operators) and
    the mutual-TLS one (``mtls_listen``, a client certificate signed by ``client_ca`` is required)
    for the roles in ``client_cert_required_roles`` (peer centers, 112/119 officers).
    """

    server_cert: FilePath | None = None
    server_key: FilePath | None = None
    #: CA bundle that signs client certificates (required with ``mtls_listen``).
    client_ca: FilePath | None = None
    #: HOST:PORT of the mutual-TLS listener; None for a center without one.
    mtls_listen: str | None = None
    #: Roles that MUST call through the mutual-TLS listener (checked per call).
    client_cert_required_roles: frozenset[str] = frozenset({"PEER_CENTER", "POLICE_OFFICER", "FIRE_OFFICER"})

    _roles = field_validator("client_cert_required_roles")(_check_roles)

    @field_validator("mtls_listen")
    @classmethod
    def _mtls_host_port(cls, value: str | None) -> str | None:
        return None if value is None else _check_host_port(value)


class TokenSettings(_Section):
    """Bearer token verification (ES256 JWT, audience ``ansim``)."""

    #: Trusted issuers: ``iss`` claim → PEM file with the issuer's EC P-256 public key.
    issuers: dict[str, FilePath] = Field(default_factory=dict)
    #: Allowed clock skew when checking ``exp`` / ``iat``.
    leeway: timedelta = timedelta(seconds=30)


#: TEST-mode timers of a ``--demo`` center when its settings give none (declared to the suite).
DEMO_DISPATCH_TEST_ACK_DEADLINE = timedelta(seconds=5)
DEMO_DANGER_TEST_EXIT_ABSENCE = timedelta(seconds=10)


class TimerSettings(_Section):
    """Protocol timers."""

    #: A dispatch not acknowledged within this time is escalated (spec §Dispatch).
    dispatch_ack_deadline: timedelta = timedelta(seconds=30)
    #: Acknowledgement interval of TEST-mode dispatches, 5-30 s [DSP-005]; None: as above (a
    #: ``--demo`` center uses 5 s, so that a conformance run sees an escalation [DSP-007]).
    dispatch_test_ack_deadline: timedelta | None = None
    #: TEST-mode exit absence of danger zones, 5-60 s [TAG-022]; None: the zone's ``exit_absence``
    #: (a ``--demo`` center uses 10 s).
    danger_test_exit_absence: timedelta | None = None
    #: How often an unacknowledged guardian notification is sent again before it escalates.
    renotify_count: int = Field(default=3, ge=0, le=10)
    #: Time between renotifications.
    renotify_interval: timedelta = timedelta(seconds=60)
    #: Grace given to in-flight calls at shutdown.
    shutdown_grace: timedelta = timedelta(seconds=10)
    #: Escalation step of EMERGENCY guardian notifications [GRD-005]: 30-180 s.
    guardian_emergency_step: timedelta = timedelta(seconds=60)
    #: Escalation step of WARNING guardian notifications [GRD-005]: 5-30 min.
    guardian_warning_step: timedelta = timedelta(minutes=10)
    #: Escalation step of TEST-mode notifications (both severities), down to 5 s [GRD-005]; None:
    #: the steps above (a ``--demo`` center uses 5 s).
    guardian_test_step: timedelta | None = None

    @model_validator(mode="after")
    def _guardian_steps(self) -> TimerSettings:
        problems = []
        if not timedelta(seconds=30) <= self.guardian_emergency_step <= timedelta(seconds=180):
            problems.append("guardian_emergency_step must lie in 30-180 s [GRD-005]")
        if not timedelta(minutes=5) <= self.guardian_warning_step <= timedelta(minutes=30):
            problems.append("guardian_warning_step must lie in 5-30 min [GRD-005]")
        test = self.guardian_test_step
        if test is not None and not timedelta(seconds=5) <= test <= timedelta(minutes=30):
            problems.append("guardian_test_step must lie in 5 s - 30 min [GRD-005]")
        dispatch = self.dispatch_test_ack_deadline
        if dispatch is not None and not timedelta(seconds=5) <= dispatch <= timedelta(seconds=30):
            problems.append("dispatch_test_ack_deadline must lie in 5-30 s [DSP-005]")
        absence = self.danger_test_exit_absence
        if absence is not None and not timedelta(seconds=5) <= absence <= timedelta(seconds=60):
            problems.append("danger_test_exit_absence must lie in 5-60 s [TAG-022]")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # Safe trips (spec §11.4, TRIP-003): the deployment's timers, and separate TEST-mode values
    # (down to 5 s) so that a conformance run sees a whole escalation quickly. A TEST value of None
    # means the LIVE value; the TEST overdue grace and off-route tolerance apply when the traveller
    # gives none. A ``--demo`` center uses 5 s (location silence 15 s) unless configured.
    #: Time without a fresh fix before LOCATION_LOST: 120-900 s.
    trip_location_silence: timedelta = timedelta(seconds=300)
    #: Time from telling the guardians to raising the emergency: 1-10 min.
    trip_escalation_delay: timedelta = timedelta(minutes=5)
    trip_test_location_silence: timedelta | None = None
    trip_test_escalation_delay: timedelta | None = None
    trip_test_overdue_grace: timedelta | None = None
    trip_test_off_route_tolerance: timedelta | None = None

    @model_validator(mode="after")
    def _trip_timers(self) -> TimerSettings:
        second, minute = timedelta(seconds=1), timedelta(minutes=1)
        bounds = {
            "trip_location_silence": (120 * second, 900 * second),
            "trip_escalation_delay": (minute, 10 * minute),
            "trip_test_location_silence": (5 * second, 900 * second),
            "trip_test_escalation_delay": (5 * second, 10 * minute),
            "trip_test_overdue_grace": (5 * second, 60 * minute),
            "trip_test_off_route_tolerance": (5 * second, 600 * second),
        }
        problems = [
            f"{name} must lie in {low} - {high} [TRIP-003]"
            for name, (low, high) in bounds.items()
            if (value := getattr(self, name)) is not None and not low <= value <= high
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RetentionSettings(_Section):
    """How long each data class is kept before it is destroyed."""

    #: Location fixes of closed emergencies and finished safe trips.
    location_traces: timedelta = timedelta(days=30)
    #: Video grants after they end (spec §4.2: 1-90 days).
    grants: timedelta = timedelta(days=30)
    #: Video access / provision records (개인영상정보 제공 기록): kept longer for audit.
    access_records: timedelta = timedelta(days=3 * 365)
    #: Tag sightings from reader gateways (spec §4.2: 1-30 days).
    tag_sightings: timedelta = timedelta(days=7)
    #: Guardian notifications after acknowledgement or escalation.
    notifications: timedelta = timedelta(days=30)
    #: Stream event history available for resume; older cursors get CURSOR_EXPIRED.
    events: timedelta = timedelta(days=7)
    #: Idempotency records (the contract asks for at least 24 hours).
    idempotency: timedelta = timedelta(hours=24)

    #: Location fixes of TEST-mode emergencies and trips, 5 s - 90 days [PRV-015]; None: as
    #: ``location_traces`` (a ``--demo`` center uses 5 s unless configured).
    test_location_traces: timedelta | None = None
    #: Emergency resources (state, kind, times) after they end (spec §4.2: 30 days - 5 years).
    emergencies: timedelta = timedelta(days=365)

    @model_validator(mode="after")
    def _retention_bounds(self) -> RetentionSettings:
        day = timedelta(days=1)
        bounds = {  # spec §4.2 [PRV-010]
            "location_traces": (day, 90 * day),
            "grants": (day, 90 * day),
            "notifications": (7 * day, 90 * day),
            "access_records": (365 * day, 5 * 366 * day),
            "emergencies": (30 * day, 5 * 366 * day),
            "test_location_traces": (timedelta(seconds=5), 90 * day),
        }
        problems = [
            f"{name} must lie in {low} - {high} (spec §4.2, PRV-010)"
            for name, (low, high) in bounds.items()
            if (value := getattr(self, name)) is not None and not low <= value <= high
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("tag_sightings")
    @classmethod
    def _sightings_bounds(cls, value: timedelta) -> timedelta:
        if not timedelta(days=1) <= value <= timedelta(days=30):
            raise ValueError("must lie in 1-30 days (spec §4.2, PRV-010)")
        return value

    @field_validator("idempotency")
    @classmethod
    def _at_least_a_day(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=24):
            raise ValueError("must be at least 24 hours (AIP-155 convention in proto/README.md)")
        return value


class FederationSettings(_Section):
    """How this center reaches the national directory and its peers (spec §16, §17).

    The client certificate is this center's identity on mutual TLS (its fingerprint is registered in
    the directory); ``peer_token_key`` signs the PEER_CENTER bearer tokens it sends (issuer
    ``peer_token_issuer``, which peers trust through their ``tokens.issuers``).
    """

    #: CA bundle that signs the directory's and the peers' server certificates.
    ca_cert: FilePath | None = None
    client_cert: FilePath | None = None
    client_key: FilePath | None = None
    peer_token_key: FilePath | None = None
    peer_token_issuer: str = ""
    #: TLS server name of the directory (when it differs from the host of ``directory_endpoint``).
    directory_server_name: str | None = None
    #: JSON file with CenterEntry objects (proto JSON) trusted in addition to the directory's
    #: registry: a center without a directory (demo, conformance) learns its peers from it.
    static_peers: FilePath | None = None
    #: Incremental trust-registry reload interval (DIR-021: at most 15 minutes).
    registry_reload: timedelta = timedelta(minutes=15)
    #: First retry of a forward after a fallback, doubling to 5 minutes (FED-015: 30 s). Shorter
    #: only for demos and tests on loopback.
    recovery_first: timedelta = timedelta(seconds=30)


class AgencySettings(_Section):
    """A 112 or 119 situation room this center dispatches to (spec §13.1)."""

    #: ``agencies/{agency}``, e.g. ``agencies/seoul-112``.
    name: str = Field(pattern=r"^agencies/[a-z0-9][a-z0-9-]{0,62}$")
    kind: Literal["POLICE_112", "FIRE_119"]
    display_name: str = ""
    #: 5-digit 시군구 codes (legal-dong) it is responsible for; empty: the default of its kind.
    sigungu_codes: frozenset[str] = frozenset()


#: The situation rooms of the ``--demo`` center (used when the settings name none).
DEMO_AGENCIES: tuple[AgencySettings, ...] = (
    AgencySettings(name="agencies/seoul-112", kind="POLICE_112", display_name="서울경찰청 112종합상황실"),
    AgencySettings(name="agencies/seoul-119", kind="FIRE_119", display_name="서울소방재난본부 119종합상황실"),
)


class CenterSettings(BaseSettings):
    """Everything a reference center needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="ANSIM_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    #: The center id; the center's resource name is ``centers/{center_id}``.
    center_id: str = Field(pattern=ID_PATTERN)
    display_name: str = Field(min_length=1, max_length=200)
    listen: str = "127.0.0.1:50051"
    data_dir: Path = Path("data")
    tls: TlsSettings = TlsSettings()
    tokens: TokenSettings = TokenSettings()
    #: Development mode: plain TCP, no client certificates; every LIVE request is refused with
    #: PERMISSION_DENIED / LIVE_MODE_REFUSED.
    insecure_dev: bool = False
    timers: TimerSettings = TimerSettings()
    retention: RetentionSettings = RetentionSettings()
    #: Address of the national directory (HOST:PORT); None when this center runs stand-alone.
    directory_endpoint: str | None = None
    #: Roles this center serves; tokens with other roles get ROLE_NOT_PERMITTED.
    roles: frozenset[str] = ROLE_NAMES
    #: HOST:PORT of the Prometheus metrics HTTP endpoint; None disables it.
    metrics_listen: str | None = None
    #: The 112 / 119 situation rooms emergencies are dispatched to (spec §13.1).
    agencies: tuple[AgencySettings, ...] = ()
    #: ``center`` (the default) or ``directory``: the same binary runs the national directory.
    role: Literal["center", "directory"] = "center"
    federation: FederationSettings = FederationSettings()

    _roles = field_validator("roles")(_check_roles)

    @field_validator("listen", "directory_endpoint", "metrics_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        return None if value is None else _check_host_port(value)

    @model_validator(mode="after")
    def _consistent(self) -> CenterSettings:
        problems: list[str] = []
        if not self.insecure_dev:
            if self.tls.server_cert is None or self.tls.server_key is None:
                problems.append("tls.server_cert and tls.server_key are required unless insecure_dev is set")
            if self.tls.mtls_listen is not None and self.tls.client_ca is None:
                problems.append("tls.client_ca is required with tls.mtls_listen")
            if self.tls.client_cert_required_roles & self.roles and self.tls.mtls_listen is None:
                problems.append(
                    "tls.mtls_listen is required while roles include client-certificate roles "
                    f"{sorted(self.tls.client_cert_required_roles & self.roles)}"
                    " (or set tls.client_cert_required_roles: [])"
                )
        if (self.tls.server_cert is None) != (self.tls.server_key is None):
            problems.append("tls.server_cert and tls.server_key go together")
        if not self.tokens.issuers:
            problems.append("tokens.issuers is empty: no caller could authenticate")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def center_name(self) -> str:
        return f"centers/{self.center_id}"

    @property
    def uses_tls(self) -> bool:
        return self.tls.server_cert is not None and not self.insecure_dev

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(_file_source(settings_cls, path))
        return tuple(sources)


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return YamlConfigSettingsSource(settings_cls, yaml_file=path, yaml_file_encoding="utf-8")
    if suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    raise ConfigError(f"{path}: config files must end in .yaml, .yml or .toml")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(settings)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> CenterSettings:
    """Load and check the settings; raise :class:`ConfigError` listing every problem."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    token = _config_file.set(config_file)
    try:
        return CenterSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        source = f" (config file {config_file})" if config_file else ""
        raise ConfigError(f"invalid center settings{source}:\n{_describe(error)}") from None
    finally:
        _config_file.reset(token)
