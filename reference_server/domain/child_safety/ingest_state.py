"""What one ingest transaction reads and writes, kept in memory while the transaction runs.

A batch of tag events is stored and derived in ONE transaction (see ``Ingest.handle_many``). Each
event used to load its reader, tag, ward and zones as protobuf rows, read and upsert the ward's
derivation state (TAG-021 clock, §14.5.1 presence, §14.5.2 danger-zone hysteresis, CHD-017 mode)
and save the reader and tag back. :class:`IngestState` loads each of them once per transaction,
lets the rules read and change the copies, and writes what changed with :meth:`flush` — in the
same transaction, before it commits, so an acknowledged event never outruns its state (TAG-002).
The transaction holds the store's write lock throughout, so nothing else changes these rows
meanwhile; the copies are dropped with the transaction (a rolled-back batch leaves no stale state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from ansim.v1 import child_safety_pb2 as cs
from google.protobuf.timestamp_pb2 import Timestamp

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.child_safety import repository
from reference_server.domain.child_safety.common import M
from reference_server.domain.child_safety.places import in_area
from reference_server.domain.child_safety.registry import effective_zone
from reference_server.store.interface import Row, Transaction

Resource = cs.Ward | cs.Tag | cs.Reader | cs.Zone
S = TypeVar("S")


@dataclass
class Presence:
    """A ward's §14.5.1 presence state for one place zone (row of ``cs_presence``)."""

    inside: bool
    local_date: str
    last_sighting: datetime


@dataclass
class Danger:
    """A ward's §14.5.2 hysteresis state for one danger zone (row of ``cs_danger``)."""

    inside: bool
    run_count: int
    run_start: datetime | None
    last_in: datetime | None
    mode: int


@dataclass(frozen=True)
class StoredEvent:
    """An event id already stored (TAG-003, TAG-004)."""

    content_hash: bytes
    emergency: str


#: Rows per multi-row INSERT (9 columns × 100 stays far below SQLite's parameter limit).
INSERT_CHUNK = 100


async def _insert_rows(tx: Transaction, into: str, rows: Sequence[tuple[object, ...]]) -> None:
    """INSERT ``rows`` into ``into`` ("table (columns)") in order, a statement per chunk."""
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        one = "(" + ", ".join("?" for _ in chunk[0]) + ")"
        await tx.execute(
            f"INSERT INTO {into} VALUES " + ", ".join(one for _ in chunk),
            [value for row in chunk for value in row],
        )


def _opt(text: str | None) -> datetime | None:
    return from_rfc3339(text) if text else None


def _presence_of(row: Row) -> Presence:
    return Presence(bool(row["inside"]), str(row["local_date"]), from_rfc3339(row["last_sighting"]))


def _danger_of(row: Row) -> Danger:
    return Danger(
        bool(row["inside"]),
        int(row["run_count"]),
        _opt(row["run_start"]),
        _opt(row["last_in"]),
        int(row["mode"]),
    )


class IngestState:
    """The cached reads and pending writes of one ingest transaction (see module docstring)."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        #: The transaction's time as stored (RFC 3339) and as a Timestamp.
        self.now_text = to_rfc3339(tx.now)
        self._now_ts = Timestamp()
        self._now_ts.FromDatetime(tx.now.astimezone(UTC))
        #: name → resource (None: no such row), shared by every event of the transaction.
        self._resources: dict[str, Resource | None] = {}
        self._uids: dict[str, str | None] = {}
        self._danger_zones: list[cs.Zone] | None = None
        #: (zone, latitude, longitude) → inside: a reader's sightings share one position.
        self._inside: dict[tuple[str, float, float], bool] = {}
        self._events: dict[str, StoredEvent | None] = {}
        self._clock: dict[str, datetime | None] = {}
        self._presence: dict[tuple[str, str], Presence | None] = {}
        self._danger: dict[tuple[str, str], Danger | None] = {}
        self._dirty_resources: dict[str, Resource] = {}
        self._dirty_clock: set[str] = set()
        self._dirty_presence: set[tuple[str, str]] = set()
        self._dirty_danger: set[tuple[str, str]] = set()
        #: Rows of cs_tag_events and cs_sightings to insert, in event order.
        self._new_events: list[tuple[str, bytes, str]] = []
        self._new_sightings: list[tuple[str, str, str, int, str, str, bytes, int, int]] = []
        #: ward → (mode, observed) of its newest event in this transaction (CHD-017).
        self._modes: dict[str, tuple[int, datetime]] = {}

    # -- stored event ids ---------------------------------------------------------------------

    async def prefetch_events(self, event_ids: list[str]) -> None:
        """Look up many event ids at once (a batch's dedup in one query per 500 ids)."""
        wanted = [e for e in dict.fromkeys(event_ids) if e not in self._events]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            rows = await self.tx.fetchall(
                f"SELECT event_id, content_hash, emergency FROM cs_tag_events WHERE event_id IN ({marks})",
                chunk,
            )
            for e in chunk:
                self._events[e] = None
            for r in rows:
                self._events[str(r["event_id"])] = StoredEvent(bytes(r["content_hash"]), str(r["emergency"]))

    async def stored_event(self, event_id: str) -> StoredEvent | None:
        if event_id not in self._events:
            await self.prefetch_events([event_id])
        return self._events[event_id]

    def insert_event(self, event_id: str, digest: bytes) -> None:
        """Store the event id with its content hash (written by :meth:`flush`)."""
        self._new_events.append((event_id, digest, self.now_text))
        self._events[event_id] = StoredEvent(digest, "")

    def add_sighting(self, row: tuple[str, str, str, int, str, str, bytes, int, int]) -> None:
        """A row of the track, ``cs_sightings`` (ward, event_id, reader, reader_kind, observed,
        received, location, derived, mode), written by :meth:`flush` in the order added."""
        self._new_sightings.append(row)

    # -- registry resources -------------------------------------------------------------------

    async def _fetch(self, name: str) -> None:
        row = await self.tx.fetchone("SELECT collection, body FROM cs_resources WHERE name = ?", (name,))
        if row is None:
            self._resources[name] = None
            return
        cls = repository.COLLECTION_TYPES.get(str(row["collection"]))
        self._resources[name] = cls.FromString(bytes(row["body"])) if cls is not None else None

    async def load(self, name: str, cls: type[M]) -> M | None:
        """As :func:`repository.load`, the same object for every event of the transaction."""
        if name not in self._resources:
            await self._fetch(name)
        found = self._resources[name]
        return found if isinstance(found, cls) else None

    async def tag_by_uid(self, uid: str) -> cs.Tag | None:
        if uid not in self._uids:
            row = await self.tx.fetchone("SELECT name FROM cs_resources WHERE uid = ?", (uid,))
            self._uids[uid] = str(row["name"]) if row is not None else None
        name = self._uids[uid]
        return await self.load(name, cs.Tag) if name is not None else None

    def touch(self, reader: cs.Reader) -> None:
        """Set the reader's ``last_event_time`` to the transaction's time (once is enough)."""
        if reader.name not in self._dirty_resources:
            reader.last_event_time.CopyFrom(self._now_ts)
            self.changed(reader)

    def changed(self, message: cs.Tag | cs.Reader) -> None:
        """Note that ``message`` (a loaded resource) was changed; :meth:`flush` saves it."""
        self._dirty_resources[message.name] = message

    async def danger_zones(self) -> list[cs.Zone]:
        """The effective DANGER zones (§14.5.2), in name order."""
        if self._danger_zones is None:
            zones = await repository.list_all(self.tx, "zones", cs.Zone)
            self._danger_zones = [effective_zone(z) for z in zones if z.kind == cs.ZONE_KIND_DANGER]
        return self._danger_zones

    def inside(self, zone: cs.Zone, lat: float, lon: float) -> bool:
        """:func:`in_area` of a loaded zone, computed once per position in the transaction."""
        key = (zone.name, lat, lon)
        found = self._inside.get(key)
        if found is None:
            found = self._inside[key] = in_area(lat, lon, zone.area)
        return found

    # -- derivation state ---------------------------------------------------------------------

    async def ward_clock(self, ward: str) -> datetime | None:
        """The observed time of the ward's newest evaluated sighting (TAG-021)."""
        if ward not in self._clock:
            row = await self.tx.fetchone("SELECT last_observed FROM cs_ward_clock WHERE ward = ?", (ward,))
            self._clock[ward] = from_rfc3339(row["last_observed"]) if row is not None else None
        return self._clock[ward]

    def set_ward_clock(self, ward: str, observed: datetime) -> None:
        self._clock[ward] = observed
        self._dirty_clock.add(ward)

    async def _zone_state(
        self,
        cache: dict[tuple[str, str], S | None],
        table: str,
        key: tuple[str, str],
        of_row: Callable[[Row], S],
    ) -> S | None:
        """The ``table`` row of ``key`` (ward, zone) as ``of_row`` builds it, read once per transaction."""
        if key not in cache:
            row = await self.tx.fetchone(f"SELECT * FROM {table} WHERE ward = ? AND zone = ?", key)
            cache[key] = of_row(row) if row is not None else None
        return cache[key]

    async def presence(self, ward: str, zone: str) -> Presence | None:
        return await self._zone_state(self._presence, "cs_presence", (ward, zone), _presence_of)

    def set_presence(self, ward: str, zone: str, state: Presence) -> None:
        self._presence[(ward, zone)] = state
        self._dirty_presence.add((ward, zone))

    async def danger(self, ward: str, zone: str) -> Danger | None:
        return await self._zone_state(self._danger, "cs_danger", (ward, zone), _danger_of)

    def set_danger(self, ward: str, zone: str, state: Danger) -> None:
        self._danger[(ward, zone)] = state
        self._dirty_danger.add((ward, zone))

    def remember_mode(self, ward: str, mode: int, observed: datetime) -> None:
        """Note the mode of an accepted tag event of the ward if it is the ward's newest (CHD-017);
        the last of equal times wins, as when each event upserted it in turn."""
        known = self._modes.get(ward)
        if known is None or observed >= known[1]:
            self._modes[ward] = (mode, observed)

    # -- write-back ---------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything changed since the last flush into the transaction."""
        tx = self.tx
        await _insert_rows(tx, "cs_tag_events (event_id, content_hash, received)", self._new_events)
        await _insert_rows(
            tx,
            "cs_sightings (ward, event_id, reader, reader_kind, observed, received, location, derived, mode)",
            self._new_sightings,
        )
        self._new_events.clear()
        self._new_sightings.clear()
        for name, message in self._dirty_resources.items():
            await repository.save(tx, name, message)
        for ward in self._dirty_clock:
            await tx.execute(
                "INSERT INTO cs_ward_clock (ward, last_observed) VALUES (?, ?)"
                " ON CONFLICT (ward) DO UPDATE SET last_observed = excluded.last_observed",
                (ward, to_rfc3339(self._clock[ward])),  # type: ignore[arg-type]
            )
        for key in self._dirty_presence:
            p = self._presence[key]
            assert p is not None
            await tx.execute(
                "INSERT INTO cs_presence (ward, zone, inside, local_date, last_sighting)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (ward, zone) DO UPDATE SET inside = excluded.inside,"
                " local_date = excluded.local_date, last_sighting = excluded.last_sighting",
                (*key, int(p.inside), p.local_date, to_rfc3339(p.last_sighting)),
            )
        for key in self._dirty_danger:
            d = self._danger[key]
            assert d is not None
            await tx.execute(
                "INSERT INTO cs_danger (ward, zone, inside, run_count, run_start, last_in, mode)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ward, zone) DO UPDATE SET"
                " inside = excluded.inside, run_count = excluded.run_count,"
                " run_start = excluded.run_start, last_in = excluded.last_in, mode = excluded.mode",
                (
                    *key,
                    int(d.inside),
                    d.run_count,
                    to_rfc3339(d.run_start) if d.run_start else None,
                    to_rfc3339(d.last_in) if d.last_in else None,
                    d.mode,
                ),
            )
        for ward, (mode, observed) in self._modes.items():
            await tx.execute(
                "INSERT INTO cs_ward_mode (ward, mode, observed) VALUES (?, ?, ?) ON CONFLICT (ward)"
                " DO UPDATE SET mode = excluded.mode, observed = excluded.observed"
                " WHERE excluded.observed >= cs_ward_mode.observed",
                (ward, mode, to_rfc3339(observed)),
            )
        self._dirty_resources.clear()
        self._dirty_clock.clear()
        self._dirty_presence.clear()
        self._dirty_danger.clear()
        self._modes.clear()
