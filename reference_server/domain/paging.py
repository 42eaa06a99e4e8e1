"""Opaque page tokens and page sizes for every List rpc of the center [GEN-020, GEN-021].

A token is base64url (no padding) of the JSON ``[list, filters, position]`` followed by 16 bytes of
HMAC-SHA256 under one key kept in the data directory. ``list`` names the collection (and, where a
list is per caller, the caller), ``filters`` the request's filters, ``position`` where the next page
starts (a string, a number or a list of them). A token that does not decode, fails the MAC, or was
issued for another list or other filters is INVALID_ARGUMENT / PAGE_TOKEN_INVALID.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from pathlib import Path
from typing import TypeAlias

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.events.cursor import load_or_create_key

Position: TypeAlias = str | int | tuple[str | int, ...]

MAC_BYTES = 16
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
KEY_FILE = "page-token.key"


def page_size(requested: int) -> int:
    """0 means the default of 50; the protos already reject values above 1000 [GEN-020]."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


def _invalid() -> AnsimError:
    return AnsimError(
        error_pb2.ERROR_REASON_PAGE_TOKEN_INVALID,
        "page_token was not issued by this center for this list with these filters",
    )


class PageTokens:
    """Issues and checks the page tokens of one center."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> PageTokens:
        return cls(load_or_create_key(data_dir / KEY_FILE))

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, kind: str, filters: str, position: Position) -> str:
        """The token for the page of list ``kind`` with ``filters`` that starts after ``position``."""
        value = list(position) if isinstance(position, tuple) else position
        body = json.dumps([kind, filters, value], separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def decode(self, kind: str, filters: str, token: str) -> Position | None:
        """The position a token of this list and these filters continues after; None when empty."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _invalid() from None
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(raw) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise _invalid()
        try:
            found_kind, found_filters, position = json.loads(body)
        except (ValueError, TypeError):
            raise _invalid() from None
        if found_kind != kind or found_filters != filters:
            raise _invalid()
        if isinstance(position, list) and all(isinstance(p, str | int) for p in position):
            return tuple(position)
        if isinstance(position, str | int):
            return position
        raise _invalid()

    def decode_pair(self, kind: str, filters: str, token: str) -> tuple[str, str] | None:
        """``decode`` for lists that page by a (time, name) pair."""
        position = self.decode(kind, filters, token)
        if position is None:
            return None
        if isinstance(position, tuple) and len(position) == 2 and all(isinstance(p, str) for p in position):
            return str(position[0]), str(position[1])
        raise _invalid()
