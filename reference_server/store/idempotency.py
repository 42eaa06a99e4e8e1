"""Idempotent mutating calls (AIP-155, [IDM-001]): the first outcome is kept and returned again.

Typical servicer code::

    async def RaiseEmergency(self, request, context):
        validate(request)
        return await idempotent(
            self.ctx.store, current_caller().key, METHOD, request.request_id, request,
            emergency_pb2.Emergency, lambda tx: self._raise(tx, request),
        )

``action`` runs inside the same transaction that looks up and records the outcome, so a retry
either gets the stored response or the whole write happens once; a domain error rolls everything
back and records nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message

from reference_server.store.interface import Store, Transaction

R = TypeVar("R", bound=Message)


def request_hash(request: Message) -> bytes:
    """SHA-256 over the message type name and its deterministic serialization."""
    digest = hashlib.sha256(request.DESCRIPTOR.full_name.encode("utf-8") + b"\x00")
    digest.update(request.SerializeToString(deterministic=True))
    return digest.digest()


async def idempotent(
    store: Store,
    caller: str,
    method: str,
    request_id: str,
    request: Message,
    response_type: type[R],
    action: Callable[[Transaction], Awaitable[R]],
) -> R:
    """Run ``action`` once per (caller, method, request_id); replay its response on a retry.

    Raises AnsimError REQUEST_ID_REUSED when ``request_id`` was used with a different payload.
    """
    digest = request_hash(request)
    async with store.transaction() as tx:
        stored = await tx.idempotency_lookup(caller, method, request_id, digest)
        if stored is not None:
            return response_type.FromString(stored)
        response = await action(tx)
        await tx.idempotency_record(caller, method, request_id, digest, response.SerializeToString())
        return response
