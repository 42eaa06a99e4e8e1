"""Mutant: accepts a resume cursor issued for another stream.

Defect: cursors are still checked for the center's MAC, but no longer for the stream (scope) they
were issued for, so a cursor of one emergency's or recipient's stream is taken as a position in
another's instead of being CURSOR_INVALID [STM-003 broken]. (The stream read is still the one
asked for, so no foreign event leaks; the client just resumes at a wrong position.)

Expected to fail: TC_STM_001_SRV (WatchEmergency with another emergency's cursor is CURSOR_INVALID;
the mutant hangs at the foreign position instead). TC_GRD_003_SRV still passes, but only because
the other recipient's stream is shorter than the cursor's position ("ahead of this stream");
TC_DSP_003_SRV because dispatch cursors also name their subscription, checked on its own.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from typing import Any

from reference_server.events.cursor import CursorCodec

CAUGHT_BY = ("TC_STM_001_SRV",)

_original = CursorCodec.decode


def _issued_scope(cursor: str) -> str | None:
    """The scope written inside a cursor (version byte, 2-byte length, scope, ...), if readable."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (length,) = struct.unpack(">H", raw[1:3])
        return raw[3 : 3 + length].decode("utf-8")
    except (binascii.Error, ValueError, struct.error):
        return None


def _decode_for_any_scope(self: CursorCodec, scope: str, cursor: str) -> int:
    return _original(self, _issued_scope(cursor) or scope, cursor)


def install(ctx: Any, server: Any) -> Sequence[str]:
    CursorCodec.decode = _decode_for_any_scope  # type: ignore[method-assign]
    return []
