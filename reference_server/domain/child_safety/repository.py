"""Storage of the four registry resources as serialized messages (table ``cs_resources``)."""

from __future__ import annotations

from ansim.v1 import child_safety_pb2 as cs

from reference_server.domain.child_safety.common import M, Queryable, parse
from reference_server.store.interface import Transaction

COLLECTION_TYPES: dict[str, type[cs.Ward] | type[cs.Tag] | type[cs.Reader] | type[cs.Zone]] = {
    "wards": cs.Ward,
    "tags": cs.Tag,
    "readers": cs.Reader,
    "zones": cs.Zone,
}


def collection_of(name: str) -> str:
    parts = name.split("/")
    return parts[2] if len(parts) == 4 else ""


async def load(q: Queryable, name: str, cls: type[M]) -> M | None:
    """The resource ``name`` if it exists and is of the collection of ``cls``."""
    row = await q.fetchone("SELECT collection, body FROM cs_resources WHERE name = ?", (name,))
    if row is None or COLLECTION_TYPES.get(row["collection"]) is not cls:
        return None
    return parse(cls, row["body"])


async def save(tx: Transaction, name: str, message: cs.Ward | cs.Tag | cs.Reader | cs.Zone) -> None:
    uid = message.uid if isinstance(message, cs.Tag) else None
    await tx.execute(
        "INSERT INTO cs_resources (name, collection, uid, body) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET uid = excluded.uid, body = excluded.body",
        (name, collection_of(name), uid, message.SerializeToString(deterministic=True)),
    )


async def remove(tx: Transaction, name: str) -> None:
    await tx.execute("DELETE FROM cs_resources WHERE name = ?", (name,))


async def list_all(q: Queryable, collection: str, cls: type[M], after: str = "") -> list[M]:
    rows = await q.fetchall(
        "SELECT body FROM cs_resources WHERE collection = ? AND name > ? ORDER BY name", (collection, after)
    )
    return [parse(cls, r["body"]) for r in rows]


async def tag_by_uid(q: Queryable, uid: str) -> cs.Tag | None:
    row = await q.fetchone("SELECT body FROM cs_resources WHERE uid = ?", (uid,))
    return None if row is None else parse(cs.Tag, row["body"])
