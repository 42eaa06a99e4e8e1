"""Video stream tokens (spec §12.6): compact JWS, EdDSA over Ed25519, verifiable offline.

The signing key is created on first use and kept in ``<data-dir>/video/signing-key.json`` (0600):
its id, the raw 32-byte private key (base64url) and the time it became valid. GetVideoGatewayKeys
publishes its public half [VID-022]. The reference center signs with one key; rotation (publishing
the next key a ``refresh_interval`` ahead and the retired one until its tokens expired, VID-023) is
done by an operator replacing the file while keeping the old entry under ``retired`` — not
automated yet.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY_FILE = Path("video") / "signing-key.json"
TOKEN_TYPE = "ansim-video+jwt"
MAX_TOKEN_LIFETIME = timedelta(seconds=300)
REFRESH_INTERVAL = timedelta(seconds=900)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey
    not_before: datetime

    @property
    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_or_create(data_dir: Path, center_id: str, now: datetime) -> SigningKey:
    """The center's video signing key (created, 0600, on first start)."""
    path = data_dir / KEY_FILE
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return SigningKey(
            stored["key_id"],
            Ed25519PrivateKey.from_private_bytes(b64url_decode(stored["private_key"])),
            datetime.fromtimestamp(int(stored["not_before"]), UTC),
        )
    private = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    start = now.replace(microsecond=0)
    key_id = f"{center_id}-vgw-{start:%Y%m%d%H%M%S}"[:64]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(
            {"key_id": key_id, "private_key": b64url(raw), "not_before": int(start.timestamp())}, handle
        )
    return SigningKey(key_id, private, start)


def sign(key: SigningKey, claims: dict[str, object]) -> str:
    header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": key.key_id}
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}"
    return f"{signing_input}.{b64url(key.private.sign(signing_input.encode('ascii')))}"


def stream_claims(
    *,
    center: str,
    audience: str,
    officer: str,
    agency: str,
    grant: str,
    camera: str,
    channel: int,
    emergency: str,
    mode: str,
    issued: datetime,
    not_after: datetime,
) -> dict[str, object]:
    """The claims of spec §12.6; ``exp`` ≤ ``iat`` + 300 s and never after ``not_after`` [VID-010]."""
    iat = int(issued.timestamp())
    exp = min(iat + int(MAX_TOKEN_LIFETIME.total_seconds()), int(not_after.timestamp()))
    return {
        "iss": center,
        "aud": audience,
        "sub": officer,
        "agency": agency,
        "grant": grant,
        "camera": camera,
        "channel": channel,
        "emergency": emergency,
        "mode": mode,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": str(uuid.uuid4()),
    }


def verify(token: str, public_key: bytes) -> dict[str, object]:
    """Check the header and signature (a gateway's steps 1 and 3); return the claims. ValueError if bad."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    if header.get("alg") != "EdDSA" or header.get("typ") != TOKEN_TYPE or "crit" in header:
        raise ValueError(f"unexpected header {header}")
    Ed25519PublicKey.from_public_bytes(public_key).verify(
        b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii")
    )
    claims: dict[str, object] = json.loads(b64url_decode(parts[1]))
    return claims
