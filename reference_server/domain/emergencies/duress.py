"""The duress verifier check [EMG-014]: SHA-256(salt ‖ UTF-8 code) compared in constant time."""

from __future__ import annotations

import hashlib
import hmac


def matches(salt: bytes | None, digest: bytes | None, code: str) -> bool:
    """True when ``code`` is the duress code of the verifier (never logs or returns anything else)."""
    if not salt or not digest or not code:
        return False
    candidate = hashlib.sha256(salt + code.encode("utf-8")).digest()
    return hmac.compare_digest(candidate, digest)
