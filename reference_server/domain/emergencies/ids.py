"""Resource ids and incident ids [EMG-005, EMG-006]."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NAME = re.compile(r"^(centers/[a-z0-9][a-z0-9-]{0,62})/(emergencies|dispatches)/([a-z0-9][a-z0-9-]{0,62})$")


def ulid(now: datetime) -> str:
    """A ULID: 48-bit milliseconds since the epoch and 80 random bits, Crockford base32 (26 chars)."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A fresh resource id such as ``e-3f9c2a7b41d0``."""
    return f"{prefix}-{secrets.token_hex(6)}"


def center_of(name: str) -> str:
    """``centers/{center}`` of an emergency or dispatch name ('' if it is not one)."""
    match = NAME.match(name)
    return match.group(1) if match else ""
