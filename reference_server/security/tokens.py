"""Bearer tokens: ES256 JWTs with the Ansim claims; issuing (dev, demo, tests) and verification.

Claims: ``iss``, ``sub``, ``aud`` (``"ansim"``), ``role`` (Role value name without ``ROLE_``),
``agency`` (``agencies/{agency}`` or empty), ``center`` (``centers/{center}`` or empty), ``exp``,
``iat``, ``jti``. Verification accepts only ES256, only configured issuers (each with its own public
key), checks times against the injected clock with a leeway, and refuses unknown roles.

A verified token's claims are cached (bounded LRU keyed by the token text) until the earlier of its
``exp`` and a minute after it was verified, so a client's repeated calls pay the ES256 signature check
once a minute instead of on every call. The cache holds only tokens whose signature and claims
verified; the time checks (expiry, issued-in-the-future) still run on every call against the clock.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from ansim.v1 import common_pb2, error_pb2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansim_sdk.errors import AnsimError
from reference_server.clock import Clock, SystemClock
from reference_server.security.caller import Caller
from reference_server.security.devpki import key_pem, new_key, write_private

AUDIENCE = "ansim"
ALGORITHM = "ES256"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "role", "exp", "iat", "jti")
#: How long a verified token's claims are reused without checking its signature again.
VERIFIED_TTL_S = 60.0
#: Verified tokens remembered at most (least recently used dropped first).
VERIFIED_CACHE_SIZE = 10_000
#: Officers act for their situation room: their token must name it in ``agency`` [SEC-008].
OFFICER_ROLES = (common_pb2.ROLE_POLICE_OFFICER, common_pb2.ROLE_FIRE_OFFICER)
AGENCY_NAME = re.compile(r"^agencies/[a-z0-9][a-z0-9-]{0,62}$")


def role_claim(role: int) -> str:
    """``role`` claim for a Role value: ``common_pb2.ROLE_POLICE_OFFICER`` → ``"POLICE_OFFICER"``."""
    return common_pb2.Role.Name(role).removeprefix("ROLE_")  # type: ignore[arg-type]


def role_from_claim(claim: str) -> int | None:
    """Role value for a ``role`` claim; None for unknown names and UNSPECIFIED."""
    try:
        value = int(common_pb2.Role.Value("ROLE_" + claim))
    except ValueError:
        return None
    return value if value != common_pb2.ROLE_UNSPECIFIED else None


class TokenIssuer:
    """Signs tokens for one issuer. For development, demos and tests; production uses a real IdP."""

    def __init__(
        self, issuer: str, private_key: ec.EllipticCurvePrivateKey, clock: Clock | None = None
    ) -> None:
        self.issuer = issuer
        self._key = private_key
        self._clock = clock or SystemClock()

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def issue(
        self,
        subject: str,
        role: int,
        *,
        agency: str = "",
        center: str = "",
        ttl: timedelta = timedelta(hours=1),
        issued_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        now = issued_at or self._clock.now()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": AUDIENCE,
            "role": role_claim(role),
            "agency": agency,
            "center": center,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": str(uuid.uuid4()),
        }
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    @classmethod
    def create(cls, issuer: str, private_key_path: Path, clock: Clock | None = None) -> TokenIssuer:
        """Load the issuer key from ``private_key_path``, generating it (0600) with a ``.pub.pem``
        next to it when missing."""
        if private_key_path.is_file():
            key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{private_key_path}: not an EC private key")
        else:
            key = new_key()
            write_private(private_key_path, key_pem(key))
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pub = public_key_path(private_key_path)
        # Centers sharing one key (a demo cluster) verify with this file while others start: never
        # rewrite it in place, so no reader sees a half-written key.
        if not pub.is_file() or pub.read_bytes() != pem:
            partial = pub.with_name(f".{pub.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
            partial.write_bytes(pem)
            os.replace(partial, pub)
        return cls(issuer, key, clock)


def public_key_path(private_key_path: Path) -> Path:
    return private_key_path.with_name(private_key_path.stem + ".pub.pem")


def _invalid(message: str) -> AnsimError:
    return AnsimError(error_pb2.ERROR_REASON_TOKEN_INVALID, message)


class TokenVerifier:
    """Verifies bearer tokens against the configured issuers' public keys."""

    def __init__(
        self,
        keys: Mapping[str, ec.EllipticCurvePublicKey],
        clock: Clock | None = None,
        leeway: timedelta = timedelta(seconds=30),
    ) -> None:
        self._keys = dict(keys)
        self._clock = clock or SystemClock()
        self._leeway = leeway
        #: token → (reuse until, POSIX seconds; its verified claims)
        self._verified: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()

    @classmethod
    def from_files(
        cls,
        issuers: Mapping[str, Path],
        clock: Clock | None = None,
        leeway: timedelta = timedelta(seconds=30),
    ) -> TokenVerifier:
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for issuer, path in issuers.items():
            key = serialization.load_pem_public_key(path.read_bytes())
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ValueError(f"{path}: the key of issuer {issuer!r} is not an EC P-256 public key")
            keys[issuer] = key
        return cls(keys, clock, leeway)

    def verify(self, token: str, cert_fingerprint: str | None = None) -> Caller:
        """The caller a valid token names; AnsimError TOKEN_INVALID / TOKEN_EXPIRED otherwise."""
        now = self._clock.now().timestamp()
        cached = self._verified.get(token)
        if cached is not None and now < cached[0]:
            self._verified.move_to_end(token)
            claims = cached[1]
        else:
            claims = self._verify_signature(token)
            exp = claims["exp"]
            until = min(float(exp), now + VERIFIED_TTL_S) if isinstance(exp, int | float) else now
            if until > now:
                self._verified[token] = (until, claims)
                self._verified.move_to_end(token)
                if len(self._verified) > VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
            elif cached is not None:
                del self._verified[token]
        return self._caller(claims, cert_fingerprint)

    def _verify_signature(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once its algorithm, issuer, signature, audience and required
        claims are checked (times are checked by ``_caller``, on every call)."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _invalid("the bearer token is not a well-formed JWT") from None
        if header.get("alg") != ALGORITHM:
            raise _invalid(f"the bearer token must be signed with {ALGORITHM}")
        issuer = unverified.get("iss")
        key = self._keys.get(issuer) if isinstance(issuer, str) else None
        if key is None:
            raise _invalid("the token's issuer is not trusted by this center")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=issuer,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise _invalid(f"the token's audience must be {AUDIENCE!r}") from None
        except jwt.MissingRequiredClaimError as error:
            raise _invalid(f"the token lacks the {error.claim!r} claim") from None
        except jwt.PyJWTError:
            raise _invalid("the token's signature or claims are invalid") from None
        return claims

    def _caller(self, claims: Mapping[str, Any], cert_fingerprint: str | None) -> Caller:
        now = self._clock.now().timestamp()
        leeway = self._leeway.total_seconds()
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise _invalid("exp and iat must be numeric dates")
        if exp <= now - leeway:
            raise AnsimError(error_pb2.ERROR_REASON_TOKEN_EXPIRED, "the bearer token has expired")
        if iat > now + leeway:
            raise _invalid("the token was issued in the future")
        role = role_from_claim(str(claims["role"]))
        if role is None:
            raise _invalid("the token's role is not a known role")
        text = {k: claims.get(k, "") for k in ("sub", "agency", "center", "jti")}
        if not all(isinstance(v, str) for v in text.values()) or not text["sub"]:
            raise _invalid("sub, agency, center and jti must be strings and sub must not be empty")
        if role in OFFICER_ROLES and not AGENCY_NAME.match(text["agency"]):
            raise _invalid("a police or fire officer token must name its agency (agencies/{agency})")
        return Caller(
            subject=text["sub"],
            role=role,
            agency=text["agency"],
            center=text["center"],
            issuer=str(claims["iss"]),
            token_id=text["jti"],
            cert_fingerprint=cert_fingerprint,
        )
