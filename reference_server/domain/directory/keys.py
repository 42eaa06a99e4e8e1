"""The directory's Ed25519 signing keys, kept in its store [DIR-016] [DIR-017].

A fresh directory creates its first key valid from now (there is no earlier key whose answers could
be confused with it). Rotation: when the current key has less than ``ROTATE_BEFORE`` left, the next
key is created and listed at once with ``not_before`` 24 hours later, so it is listed a full day
before it signs; a key stays listed until 240 hours after its ``not_after``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ansim.v1 import directory_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from reference_server.clock import from_rfc3339, to_rfc3339
from reference_server.domain.directory.signing import public_key_bytes
from reference_server.store.interface import Store

KEY_LIFETIME = timedelta(days=90)
ROTATE_BEFORE = timedelta(days=7)
LIST_BEFORE_USE = timedelta(hours=24)
LIST_AFTER_EXPIRY = timedelta(hours=240)


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey
    not_before: datetime
    not_after: datetime

    def to_proto(self) -> directory_pb2.DirectoryKey:
        key = directory_pb2.DirectoryKey(
            key_id=self.key_id,
            algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519,
            public_key=public_key_bytes(self.private),
        )
        key.not_before.FromDatetime(self.not_before)
        key.not_after.FromDatetime(self.not_after)
        return key


class KeyRing:
    """Loads, creates and rotates the signing keys."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._current: SigningKey | None = None

    async def _all(self) -> list[SigningKey]:
        rows = await self._store.fetchall("SELECT * FROM directory_keys ORDER BY not_before")
        return [
            SigningKey(
                r["key_id"],
                Ed25519PrivateKey.from_private_bytes(r["private_key"]),
                from_rfc3339(r["not_before"]),
                from_rfc3339(r["not_after"]),
            )
            for r in rows
        ]

    async def _create(self, now: datetime, not_before: datetime) -> None:
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key_id = "dir-" + not_before.strftime("%Y%m%dT%H%M%S")
        not_after = not_before + KEY_LIFETIME
        async with self._store.transaction() as tx:
            await tx.execute(
                "INSERT OR IGNORE INTO directory_keys"
                " (key_id, private_key, listed_time, not_before, not_after) VALUES (?, ?, ?, ?, ?)",
                (key_id, seed, to_rfc3339(now), to_rfc3339(not_before), to_rfc3339(not_after)),
            )
            await tx.append_audit("directory", "directory.create_key", key_id, "answer signing", "ok")

    async def ensure(self, now: datetime) -> None:
        """Create the first key, or the next one when the newest is close to its end."""
        keys = await self._all()
        if not keys:
            await self._create(now, now)
            return
        newest = keys[-1]
        if newest.not_after - now < ROTATE_BEFORE:
            await self._create(now, max(now + LIST_BEFORE_USE, newest.not_after - ROTATE_BEFORE))

    async def signing_key(self, now: datetime) -> SigningKey:
        """The key to sign with at ``now``: valid now, the most recent such key."""
        cached = self._current
        if cached is not None and cached.not_before <= now <= cached.not_after - ROTATE_BEFORE:
            return cached
        await self.ensure(now)
        usable = [k for k in await self._all() if k.not_before <= now <= k.not_after]
        if not usable:
            raise RuntimeError("no directory signing key is valid now")
        self._current = usable[-1]
        return usable[-1]

    async def listed(self, now: datetime) -> list[SigningKey]:
        await self.ensure(now)
        return [k for k in await self._all() if now <= k.not_after + LIST_AFTER_EXPIRY]
