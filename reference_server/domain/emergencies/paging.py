"""Opaque page tokens of ListEmergencies and ListDispatches [GEN-020].

A token is base64url of the JSON ``[list, filters, create_time, name]`` followed by 16 bytes of
HMAC-SHA256 under a key kept in the data directory; anything else (or a token of another list or
other filters) is INVALID_ARGUMENT / PAGE_TOKEN_INVALID.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from pathlib import Path

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError
from reference_server.events.cursor import load_or_create_key

MAC_BYTES = 16
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
KEY_FILE = "sos-page-token.key"


def page_size(requested: int) -> int:
    """0 → the default 50; above 1000 → 1000 [GEN-020]."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


class PageTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> PageTokens:
        return cls(load_or_create_key(data_dir / KEY_FILE))

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, kind: str, filters: str, position: tuple[str, str]) -> str:
        body = json.dumps([kind, filters, position[0], position[1]], separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def decode(self, kind: str, filters: str, token: str) -> tuple[str, str] | None:
        """The position after which the page continues; None for an empty token."""
        if not token:
            return None
        invalid = AnsimError(
            error_pb2.ERROR_REASON_PAGE_TOKEN_INVALID,
            "page_token was not issued by this center for this list with these filters",
        )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(raw) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise invalid
        try:
            listed, listed_filters, create_time, name = json.loads(body)
        except (ValueError, TypeError):
            raise invalid from None
        if listed != kind or listed_filters != filters or not isinstance(create_time, str):
            raise invalid
        return create_time, str(name)
