"""The audit log's hash chain: canonical serialization, hashing and verification.

Hash input (documented, stable): the UTF-8 bytes of the compact JSON array

    [seq, time, actor, action, resource, purpose, outcome, prev_hash]

serialized with ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` — ``seq`` a JSON
integer, every other member a JSON string, ``time`` in UTC RFC 3339 with microseconds
(``2026-01-31T09:00:00.000000Z``). ``hash`` is the lower-case hex SHA-256 of that input;
``prev_hash`` of the first record (seq 1) is 64 ``0`` characters.

What verification catches: an edited record (its hash no longer matches), a removed record (a
sequence gap), an inserted or reordered record (a sequence or ``prev_hash`` mismatch). Someone able
to rewrite the database could also recompute every later hash, or cut off the tail; comparing with
an anchor — a ``(seq, hash)`` head published or stored elsewhere earlier — detects that too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from reference_server.store.interface import AuditProblem, AuditRecord

GENESIS_HASH = "0" * 64


def canonical(
    seq: int, time: str, actor: str, action: str, resource: str, purpose: str, outcome: str, prev_hash: str
) -> bytes:
    members = [seq, time, actor, action, resource, purpose, outcome, prev_hash]
    return json.dumps(members, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_hash(
    seq: int, time: str, actor: str, action: str, resource: str, purpose: str, outcome: str, prev_hash: str
) -> str:
    return hashlib.sha256(
        canonical(seq, time, actor, action, resource, purpose, outcome, prev_hash)
    ).hexdigest()


def hash_of(record: AuditRecord) -> str:
    """The hash ``record`` should carry given its other fields."""
    r = record
    return record_hash(r.seq, r.time, r.actor, r.action, r.resource, r.purpose, r.outcome, r.prev_hash)


class ChainVerifier:
    """Feed records in ascending ``seq`` order; :attr:`problem` holds the first bad one.

    With an ``anchor`` (a ``(seq, hash)`` head recorded earlier) it also detects a rewritten chain
    (the record at ``seq`` has another hash) and a truncated one (the chain ends before ``seq``).
    """

    def __init__(self, anchor: tuple[int, str] | None = None) -> None:
        self.anchor = anchor
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.problem: AuditProblem | None = None

    def feed(self, records: Iterable[AuditRecord]) -> bool:
        """Check more records; False once a problem was found."""
        for record in records:
            if self.problem is not None:
                break
            self.problem = self._check(record)
            self.expected_seq = record.seq + 1
            self.prev_hash = record.hash
        return self.problem is None

    def _check(self, record: AuditRecord) -> AuditProblem | None:
        if record.seq != self.expected_seq:
            return AuditProblem(
                record.seq,
                f"expected record {self.expected_seq} here: a record was removed, inserted or reordered",
            )
        if record.prev_hash != self.prev_hash:
            return AuditProblem(
                record.seq,
                "prev_hash is not the hash of the previous record: a record was inserted or reordered",
            )
        if hash_of(record) != record.hash:
            return AuditProblem(record.seq, "hash does not match the record's content: the record was edited")
        if self.anchor is not None and record.seq == self.anchor[0] and record.hash != self.anchor[1]:
            return AuditProblem(record.seq, "hash differs from the anchored hash: the chain was rewritten")
        return None

    def finish(self) -> AuditProblem | None:
        """The verdict once every record was fed."""
        if self.problem is None and self.anchor is not None and self.expected_seq <= self.anchor[0]:
            return AuditProblem(self.anchor[0], "the anchored record is missing: the log was truncated")
        return self.problem
