"""Signed ResolveCenter answers: the spec's test vector, tampering, key validity, unknown keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansim.v1 import common_pb2, directory_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from reference_server.domain.directory.signing import (
    AnswerNotVerified,
    UnknownKey,
    public_key_bytes,
    sign_answer,
    verify_answer,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "spec" / "examples" / "valid"


def _load(kind: str, name: str, message: type) -> object:
    data = json.loads((EXAMPLES / kind / name).read_text(encoding="utf-8"))
    return json_format.ParseDict(data, message(), ignore_unknown_fields=True)


def test_spec_test_vector_verifies_and_parses_to_the_two_border_candidates() -> None:
    response = _load(
        "ansim.v1.ResolveCenterResponse", "seoksu-border.json", directory_pb2.ResolveCenterResponse
    )
    keys = _load("ansim.v1.DirectoryKeys", "example.json", directory_pb2.DirectoryKeys)
    assert isinstance(response, directory_pb2.ResolveCenterResponse)
    assert isinstance(keys, directory_pb2.DirectoryKeys)
    answer = verify_answer(response, keys.keys)
    assert [c.center for c in answer.candidates] == ["centers/anyang", "centers/seoul-geumcheon"]


def test_a_changed_byte_does_not_verify() -> None:
    response = _load(
        "ansim.v1.ResolveCenterResponse", "seoksu-border.json", directory_pb2.ResolveCenterResponse
    )
    keys = _load("ansim.v1.DirectoryKeys", "example.json", directory_pb2.DirectoryKeys)
    assert isinstance(response, directory_pb2.ResolveCenterResponse)
    assert isinstance(keys, directory_pb2.DirectoryKeys)
    tampered = bytearray(response.answer)
    tampered[-1] ^= 0x01
    response.answer = bytes(tampered)
    with pytest.raises(AnswerNotVerified):
        verify_answer(response, keys.keys)


def _key(
    private: Ed25519PrivateKey, key_id: str, start: datetime, end: datetime
) -> directory_pb2.DirectoryKey:
    key = directory_pb2.DirectoryKey(
        key_id=key_id,
        algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519,
        public_key=public_key_bytes(private),
    )
    key.not_before.FromDatetime(start)
    key.not_after.FromDatetime(end)
    return key


def _answer(at: datetime) -> directory_pb2.ResolveCenterAnswer:
    answer = directory_pb2.ResolveCenterAnswer(
        service="sos", location=common_pb2.Location(latitude=37.5, longitude=127)
    )
    answer.candidates.add(center="centers/x", match=directory_pb2.CANDIDATE_MATCH_CONTAINS)
    answer.resolve_time.FromDatetime(at)
    answer.expire_time.FromDatetime(at + timedelta(hours=24))
    return answer


def test_key_must_cover_resolve_time_and_be_known() -> None:
    now = datetime.now(UTC)
    private = Ed25519PrivateKey.generate()
    response = sign_answer(_answer(now), "k1", private)
    assert verify_answer(response, [_key(private, "k1", now - timedelta(days=1), now + timedelta(days=1))])
    with pytest.raises(AnswerNotVerified):
        verify_answer(response, [_key(private, "k1", now + timedelta(hours=1), now + timedelta(days=1))])
    with pytest.raises(UnknownKey):
        verify_answer(response, [_key(private, "k2", now - timedelta(days=1), now + timedelta(days=1))])
    other = Ed25519PrivateKey.generate()
    with pytest.raises(AnswerNotVerified):
        verify_answer(response, [_key(other, "k1", now - timedelta(days=1), now + timedelta(days=1))])
