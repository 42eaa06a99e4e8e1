"""Opaque, tamper-evident stream cursors.

A cursor is base64url (no padding) of: version byte 1, scope length (2 bytes, big-endian), scope
(UTF-8), sequence (8 bytes, big-endian), then the first 16 bytes of HMAC-SHA256 over everything
before it, keyed with the center's cursor key. A cursor that does not decode, fails the HMAC, or
names another scope is CURSOR_INVALID.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from pathlib import Path

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError

VERSION = 1
MAC_BYTES = 16
KEY_BYTES = 32


def _invalid(message: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_CURSOR_INVALID, message)


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the cursor key needs at least 16 bytes")
        self._key = key

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, scope: str, sequence: int) -> str:
        raw_scope = scope.encode("utf-8")
        body = struct.pack(">BH", VERSION, len(raw_scope)) + raw_scope + struct.pack(">Q", sequence)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def decode(self, scope: str, cursor: str) -> int:
        """The sequence a cursor of ``scope`` points at; AnsimError CURSOR_INVALID otherwise."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise _invalid("the resume cursor is not a cursor issued by this center") from None
        if len(raw) < 3 + 8 + MAC_BYTES:
            raise _invalid("the resume cursor is not a cursor issued by this center")
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        version, length = struct.unpack(">BH", body[:3])
        if version != VERSION or len(body) != 3 + length + 8 or not hmac.compare_digest(mac, self._mac(body)):
            raise _invalid("the resume cursor is not a cursor issued by this center")
        if body[3 : 3 + length] != scope.encode("utf-8"):
            raise _invalid("the resume cursor was issued for another subscription")
        (sequence,) = struct.unpack(">Q", body[3 + length :])
        return int(sequence)


def load_or_create_key(path: Path) -> bytes:
    """The center's cursor key from ``path`` (created, 0600, on first use), so cursors survive restarts."""
    if path.is_file():
        key = path.read_bytes()
        if len(key) >= KEY_BYTES:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
