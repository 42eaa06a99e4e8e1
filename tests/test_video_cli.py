"""`ansim video verify-token` checks a real grant's token offline, as a video gateway does (§12).

The whole chain runs on a real center: an app raises a TEST SOS, the 112 officer acknowledges the
dispatch over mutual TLS and obtains a grant, anyone fetches the published keys without a token,
and the CLI accepts the genuine token and refuses a tampered one or one for another camera.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansim.v1 import (
    camera_pb2,
    camera_pb2_grpc,
)
from google.protobuf import json_format

from tests.support.center import REPO_ROOT, CenterProcess, start_center
from tests.support.sos import grant_for_new_sos

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    process = start_center(tmp_path_factory.mktemp("video-cli"))
    yield process
    process.terminate()


def verify(keys: Path, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ansim_sdk", "video", "verify-token", "--keys", str(keys), token]
    return subprocess.run([*command, *extra], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


async def test_gateway_accepts_genuine_token_and_refuses_tampered_or_misdirected(
    center: CenterProcess, tmp_path: Path
) -> None:
    grant = await grant_for_new_sos(center)
    assert len(grant.streams) >= 1
    async with center.channel() as channel:  # the keys are public: no token (SEC-013)
        keys = await camera_pb2_grpc.CameraServiceStub(channel).GetVideoGatewayKeys(
            camera_pb2.GetVideoGatewayKeysRequest(parent="centers/demo")
        )
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json_format.MessageToJson(keys), encoding="utf-8")
    stream = grant.streams[0]

    ok = verify(keys_file, stream.token, "--camera", stream.camera)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert grant.name in ok.stdout

    head, body, signature = stream.token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    tampered = verify(keys_file, f"{head}.{body}.{flipped}")
    assert tampered.returncode == 1 and "REFUSE" in tampered.stdout

    other = verify(keys_file, stream.token, "--camera", "centers/demo/cameras/not-this-one")
    assert other.returncode == 1 and "camera" in other.stdout
