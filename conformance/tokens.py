"""Bearer tokens for a run: minted with the declared test issuer, or the declared fixed tokens.

Minted tokens carry the claims of spec §3.2 (ES256, ``aud`` ``ansim``, ``role``, ``agency`` for
officers, ``center`` for operators and peer centers, ``exp``/``iat``/``jti``, lifetime 30 minutes).
Negative cases ask for broken variants: expired, signed by the wrong key, without a role, with an
unknown role, for another audience or from an untrusted issuer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conformance.declaration import Declaration
from conformance.outcomes import CaseSkipped

AUDIENCE = "ansim"
ALGORITHM = "ES256"
LIFETIME = timedelta(minutes=30)


def load_issuer_key(declaration: Declaration) -> ec.EllipticCurvePrivateKey | None:
    """The test issuer's private key, or None when the declaration has no test issuer."""
    issuer = declaration.credentials.test_issuer
    if issuer is None:
        return None
    if issuer.private_key_pem is not None:
        pem = issuer.private_key_pem.get_secret_value().encode()
    else:
        assert issuer.private_key_file is not None
        pem = issuer.private_key_file.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("credentials.test_issuer: the key must be an EC P-256 private key (ES256)")
    return key


class Tokens:
    """Every token a run uses."""

    def __init__(self, declaration: Declaration, run_id: str, now: datetime | None = None) -> None:
        self._declaration = declaration
        self._run_id = run_id
        self._key = load_issuer_key(declaration)
        self._now = now
        self._cache: dict[str, str] = {}

    @property
    def can_mint(self) -> bool:
        return self._key is not None

    def _clock(self) -> datetime:
        return self._now or datetime.now(UTC)

    def subject_claims(self, role: str) -> dict[str, str]:
        """``sub`` and the ``agency`` / ``center`` claims a token of ``role`` needs (spec §3.2)."""
        fixtures = self._declaration.fixtures
        tag = f"conformance-{self._run_id}"
        center = fixtures.center or ""
        if role in ("POLICE_OFFICER", "FIRE_OFFICER"):
            kind: Literal["POLICE_112", "FIRE_119"] = "POLICE_112" if role == "POLICE_OFFICER" else "FIRE_119"
            agency = fixtures.agencies.get(kind, "")
            agency_id = agency.removeprefix("agencies/") or "unknown"
            return {"sub": f"officers/{agency_id}/{tag}", "agency": agency, "center": ""}
        if role == "PEER_CENTER":
            peer = fixtures.peer_center or f"centers/{tag}"
            return {"sub": peer, "agency": "", "center": peer}
        prefix = {
            "APP_USER": "users",
            "GUARDIAN": "guardians",
            "READER_GATEWAY": "gateways",
            "CENTER_OPERATOR": "operators",
            "AUDITOR": "auditors",
            "DIRECTORY_ADMIN": "admins",
        }.get(role, "subjects")
        own_center = center if role == "CENTER_OPERATOR" else ""
        return {"sub": f"{prefix}/{tag}", "agency": "", "center": own_center}

    def token(self, role: str) -> str:
        """A valid token for ``role``: the declared fixed token, else a minted one (cached)."""
        fixed = self._declaration.credentials.tokens.get(role)
        if fixed is not None:
            return fixed.get_secret_value()
        if role not in self._cache:
            self._cache[role] = self.mint(role)
        return self._cache[role]

    def _require_key(self, what: str) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            raise CaseSkipped(
                f"{what} needs credentials.test_issuer in the declaration (the suite mints the token)"
            )
        return self._key

    def mint(
        self,
        role: str | None,
        *,
        issued_at: datetime | None = None,
        lifetime: timedelta = LIFETIME,
        claims: Mapping[str, Any] | None = None,
        omit: Sequence[str] = (),
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        issuer: str | None = None,
    ) -> str:
        """A token for ``role`` (None: no ``role`` claim) signed by the test issuer; ``claims``
        override, ``omit`` removes claims, ``signing_key`` signs with another key (forgery)."""
        key = self._require_key(f"a minted {role or 'role-less'} token")
        declared = self._declaration.credentials.test_issuer
        assert declared is not None
        now = issued_at or self._clock()
        body: dict[str, Any] = {
            "iss": issuer or declared.issuer,
            "aud": AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jti": str(uuid.uuid4()),
        }
        if role is not None:
            body.update(self.subject_claims(role))
            body["role"] = role
        else:
            body["sub"] = f"users/conformance-{self._run_id}"
        body.update(claims or {})
        for name in omit:
            body.pop(name, None)
        headers = {"kid": declared.key_id} if declared.key_id else None
        return jwt.encode(body, signing_key or key, algorithm=ALGORITHM, headers=headers)

    # --- broken tokens for negative cases ---------------------------------------------------------

    def expired(self, role: str) -> str:
        """Issued two hours ago, expired one hour ago (well beyond any clock-skew leeway)."""
        return self.mint(role, issued_at=self._clock() - timedelta(hours=2), lifetime=timedelta(hours=1))

    def forged(self, role: str) -> str:
        """Claims of a valid token, signed with a key the target has never seen."""
        return self.mint(role, signing_key=ec.generate_private_key(ec.SECP256R1()))

    def roleless(self, role: str) -> str:
        """A valid token of ``role`` without the ``role`` claim."""
        return self.mint(role, omit=("role",))

    def unknown_role(self, role: str) -> str:
        """A valid token of ``role`` whose ``role`` claim names no Role value."""
        return self.mint(role, claims={"role": "SUPERUSER"})

    def wrong_audience(self, role: str) -> str:
        return self.mint(role, claims={"aud": "not-ansim"})

    def untrusted_issuer(self, role: str) -> str:
        """Signed by a fresh key under an issuer name the target cannot know."""
        return self.mint(
            role,
            issuer=f"https://untrusted-{self._run_id}.conformance.invalid",
            signing_key=ec.generate_private_key(ec.SECP256R1()),
        )
