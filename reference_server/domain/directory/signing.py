"""Signed ResolveCenter answers (spec §16.4): signing at the directory, verification at a center.

The signing input is ``b"ansim.v1.ResolveCenterAnswer" + b"\\x00" + answer``; the algorithm is pure
Ed25519. A verifier checks the signature over the bytes exactly as received, and only then parses
them; a key verifies an answer only when the answer's ``resolve_time`` lies within the key's
validity [DIR-016] [DIR-018].
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ansim.v1 import directory_pb2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import DecodeError

SIGNING_CONTEXT = b"ansim.v1.ResolveCenterAnswer\x00"


class AnswerNotVerified(Exception):
    """The answer's signature does not verify, its key is unknown, or the key does not cover it."""


class UnknownKey(AnswerNotVerified):
    """The answer names a key id the verifier does not hold (refetch the keys once) [DIR-018]."""


def signing_input(answer: bytes) -> bytes:
    return SIGNING_CONTEXT + answer


def sign_answer(
    answer: directory_pb2.ResolveCenterAnswer, key_id: str, key: Ed25519PrivateKey
) -> directory_pb2.ResolveCenterResponse:
    """Serialize ``answer`` once and sign those bytes."""
    data = answer.SerializeToString(deterministic=True)
    return directory_pb2.ResolveCenterResponse(
        answer=data,
        signature=directory_pb2.DirectorySignature(
            key_id=key_id,
            algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519,
            signature=key.sign(signing_input(data)),
        ),
    )


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_answer(
    response: directory_pb2.ResolveCenterResponse, keys: Iterable[directory_pb2.DirectoryKey]
) -> directory_pb2.ResolveCenterAnswer:
    """Verify ``response`` against ``keys`` and return the parsed answer; AnswerNotVerified if not."""
    signature = response.signature
    if signature.algorithm != directory_pb2.SIGNATURE_ALGORITHM_ED25519:
        raise AnswerNotVerified("unsupported signature algorithm")
    key = next((k for k in keys if k.key_id == signature.key_id), None)
    if key is None:
        raise UnknownKey(f"unknown directory key {signature.key_id!r}")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(
            signature.signature, signing_input(response.answer)
        )
    except (InvalidSignature, ValueError):
        raise AnswerNotVerified("the answer's signature does not verify") from None
    try:
        answer = directory_pb2.ResolveCenterAnswer.FromString(response.answer)
    except DecodeError:
        raise AnswerNotVerified("the signed answer does not parse") from None
    resolved: datetime = answer.resolve_time.ToDatetime()
    if not key.not_before.ToDatetime() <= resolved <= key.not_after.ToDatetime():
        raise AnswerNotVerified("the key does not cover the answer's resolve_time")
    return answer
