"""The trust registry: this center's copy of the directory's center entries (spec §16.6, §17.2).

Peers are known only through it: a caller is the ACTIVE entry listing the SHA-256 fingerprint of
its client certificate with an unexpired pin, and its token's ``center`` claim must name the same
entry [FED-001] [SEC-002]. The registry is loaded from the directory (ListCenters since the highest
revision held, every ``registry_reload``, in full once a day [DIR-021]) and/or from static entries
(a center without a directory: demo, conformance); while the directory is unreachable the last
registry stays in use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from ansim.v1 import directory_pb2, error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.security.caller import Caller

log = logging.getLogger("ansim.federation.registry")

#: Fetches entries with revision > the argument (all pages).
Fetch = Callable[[int], Awaitable[list[directory_pb2.CenterEntry]]]


def _untrusted(message: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_PEER_NOT_TRUSTED, message)


def live_pins(entry: directory_pb2.CenterEntry, now: datetime) -> set[str]:
    """Fingerprints of the entry's pins that have not expired."""
    return {
        p.sha256_fingerprint
        for p in entry.certificates
        if not p.HasField("expire_time") or p.expire_time.ToDatetime(tzinfo=now.tzinfo) > now
    }


def usable_peer(entry: directory_pb2.CenterEntry | None, now: datetime) -> bool:
    """ACTIVE with at least one unexpired pin: a center we may forward to [DIR-022]."""
    return (
        entry is not None and entry.state == directory_pb2.CENTER_STATE_ACTIVE and bool(live_pins(entry, now))
    )


class TrustRegistry:
    def __init__(self, own_name: str) -> None:
        self.own_name = own_name
        self._entries: dict[str, directory_pb2.CenterEntry] = {}
        self._static: dict[str, directory_pb2.CenterEntry] = {}
        self.revision = 0

    # -- loading ---------------------------------------------------------------------------

    def add_static(self, entries: Iterable[directory_pb2.CenterEntry]) -> None:
        for entry in entries:
            self._static[entry.name] = entry
            self._entries.setdefault(entry.name, entry)

    def apply(self, entries: Iterable[directory_pb2.CenterEntry], *, full: bool = False) -> int:
        """Merge entries from ListCenters; a full load replaces everything but the static entries."""
        if full:
            self._entries = dict(self._static)
        count = 0
        for entry in entries:
            self._entries[entry.name] = entry
            self.revision = max(self.revision, entry.revision)
            count += 1
        return count

    async def reload(self, fetch: Fetch, *, full: bool = False) -> int:
        """Reload from the directory; on failure keep the registry as it is [DIR-021]."""
        entries = await fetch(0 if full else self.revision)
        if full:
            self.revision = 0
        return self.apply(entries, full=full)

    # -- queries ---------------------------------------------------------------------------

    def get(self, name: str) -> directory_pb2.CenterEntry | None:
        return self._entries.get(name)

    @property
    def me(self) -> directory_pb2.CenterEntry | None:
        return self._entries.get(self.own_name)

    def entries(self) -> list[directory_pb2.CenterEntry]:
        return list(self._entries.values())

    def by_fingerprint(self, fingerprint: str) -> directory_pb2.CenterEntry | None:
        for entry in self._entries.values():
            if any(p.sha256_fingerprint == fingerprint for p in entry.certificates):
                return entry
        return None

    def identify(self, caller: Caller, now: datetime) -> directory_pb2.CenterEntry:
        """The registered center making this call, or PERMISSION_DENIED / PEER_NOT_TRUSTED [FED-001]."""
        if not caller.cert_fingerprint:
            raise _untrusted("federation calls need a registered client certificate")
        entry = self.by_fingerprint(caller.cert_fingerprint)
        if entry is None:
            raise _untrusted("the client certificate is not registered for any center")
        if entry.state != directory_pb2.CENTER_STATE_ACTIVE:
            raise _untrusted(f"{entry.name} is suspended")
        if caller.cert_fingerprint not in live_pins(entry, now):
            raise _untrusted("the client certificate's registration has expired")
        if caller.center != entry.name:
            raise _untrusted("the token's center claim does not name the certificate's center")
        return entry
