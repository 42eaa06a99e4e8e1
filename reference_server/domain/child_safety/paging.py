"""Opaque page tokens bound to one list call (method and filters) [PAGE_TOKEN_INVALID]."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from ansim.v1 import error_pb2

from ansim_sdk.errors import AnsimError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """0 → the default 50; larger than 1000 → 1000 (proto/README.md conventions)."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


class PageTokens:
    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"ansim-page-token\x00" + key).digest()

    def _mac(self, scope: str, after: str) -> str:
        body = f"{scope}\x00{after}".encode()
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()[:32]

    def issue(self, scope: str, after: str) -> str:
        """A token resuming the list identified by ``scope`` (method + filters + caller) after ``after``."""
        raw = json.dumps({"a": after, "m": self._mac(scope, after)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    def read(self, scope: str, token: str) -> str:
        """The position a token of this list points after; PAGE_TOKEN_INVALID otherwise."""
        if not token:
            return ""
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            after = str(data["a"])
            mac = str(data["m"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise _invalid() from None
        if not hmac.compare_digest(mac, self._mac(scope, after)):
            raise _invalid()
        return after


def _invalid() -> AnsimError:
    return AnsimError(
        error_pb2.ERROR_REASON_PAGE_TOKEN_INVALID, "page_token was not issued for this list call"
    )
