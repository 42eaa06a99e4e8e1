"""Shared fixtures. Real reference-center processes come from tests/support/center.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.center import CenterProcess, start_center

PROBE_PLUGIN = "tests.support.probe_plugin:register"


@pytest.fixture(scope="module")
def demo_center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    """``ansim serve --demo`` with TLS on a free loopback port, plus the test probe service."""
    center = start_center(tmp_path_factory.mktemp("center"), plugins=[PROBE_PLUGIN])
    yield center
    center.terminate()


@pytest.fixture(scope="module")
def insecure_center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    """``ansim serve --demo --insecure-dev``: plain TCP."""
    center = start_center(tmp_path_factory.mktemp("insecure"), insecure_dev=True, plugins=[PROBE_PLUGIN])
    yield center
    center.terminate()
