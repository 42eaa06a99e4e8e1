"""Who is calling: the verified identity of the current request, set by the auth interceptor."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from ansim.v1 import common_pb2


@dataclass(frozen=True)
class Caller:
    """The caller of the current request, from its verified bearer token and TLS connection."""

    #: ``sub`` claim, e.g. ``users/u-123`` or ``officers/seoul-112/k-1002``.
    subject: str
    #: Role value (``common_pb2.ROLE_*``).
    role: int
    #: ``agencies/{agency}`` for officers, else empty.
    agency: str = ""
    #: ``centers/{center}`` for operators and peer centers, else empty.
    center: str = ""
    #: ``iss`` claim of the token.
    issuer: str = ""
    #: ``jti`` claim of the token.
    token_id: str = ""
    #: SHA-256 (hex) of the client certificate presented on the TLS connection, if any.
    cert_fingerprint: str | None = None

    @property
    def role_name(self) -> str:
        return common_pb2.Role.Name(self.role).removeprefix("ROLE_")  # type: ignore[arg-type]

    @property
    def key(self) -> str:
        """Stable identity for per-caller records (idempotency): issuer and subject."""
        return f"{self.issuer}|{self.subject}"

    def to_subject(self) -> common_pb2.Subject:
        """The caller as the wire ``Subject`` used in audit and access records."""
        return common_pb2.Subject(id=self.subject, role=self.role, agency=self.agency, center=self.center)  # type: ignore[arg-type]


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("ansim_caller", default=None)


def current_caller() -> Caller:
    """The caller of the request being handled; RuntimeError outside an authenticated call."""
    found = _current.get()
    if found is None:
        raise RuntimeError("no authenticated caller in this context (public method or outside a call)")
    return found


def optional_caller() -> Caller | None:
    """The caller if the current call is authenticated, else None (public methods)."""
    return _current.get()


def set_caller(caller: Caller | None) -> contextvars.Token[Caller | None]:
    return _current.set(caller)


def reset_caller(token: contextvars.Token[Caller | None]) -> None:
    _current.reset(token)
