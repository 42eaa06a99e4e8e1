"""Synthetic inputs shared by the benchmarks, generated once per size and cached in bench/.cache/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.core import CACHE_DIR

SEED = 20260518


@dataclass(frozen=True)
class CameraPoints:
    keys: npt.NDArray[np.int32]
    lats: npt.NDArray[np.float64]
    lons: npt.NDArray[np.float64]
    purposes: npt.NDArray[np.int8]


def camera_points(n: int) -> CameraPoints:
    """``n`` cameras clustered by municipality (the same sampler the synthetic inventory uses)."""
    path = CACHE_DIR / f"points-{n}-{SEED}.npz"
    if not path.is_file():
        from reference_server.cameras.synthetic import PURPOSE_SHARES, default_weights
        from reference_server.geo.municipalities import load_municipalities
        from reference_server.geo.sampling import clustered_points

        areas = load_municipalities()
        pts = clustered_points([m.geometry for m in areas], default_weights(areas), n, seed=SEED)
        rng = np.random.default_rng(SEED)
        purposes = rng.choice(len(PURPOSE_SHARES), size=n, p=PURPOSE_SHARES).astype(np.int8) + 1
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, lats=np.round(pts.lats, 6), lons=np.round(pts.lons, 6), purposes=purposes)
    with np.load(path) as z:
        return CameraPoints(np.arange(n, dtype=np.int32), z["lats"], z["lons"], z["purposes"])


def query_points(points: CameraPoints, n: int, jitter_m: float = 250.0) -> tuple[list[float], list[float]]:
    """Where incidents happen: near cameras (a random camera moved up to ``jitter_m``), so queries hit
    dense districts as often as the cameras do."""
    rng = np.random.default_rng(SEED + 1)
    pick = rng.integers(0, points.lats.size, n)
    dlat = rng.uniform(-1, 1, n) * jitter_m / 111_195.0
    dlon = rng.uniform(-1, 1, n) * jitter_m / (111_195.0 * np.cos(np.radians(points.lats[pick])))
    return (points.lats[pick] + dlat).tolist(), (points.lons[pick] + dlon).tolist()


def camera_csv(n: int) -> Path:
    """A CSV of ``n`` synthetic cameras in the national format (written once, then reused)."""
    path = CACHE_DIR / f"cameras-{n}-{SEED}.csv"
    if not path.is_file():
        from reference_server.cameras.csv_export import write_csv
        from reference_server.cameras.synthetic import synthetic_cameras

        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        write_csv(synthetic_cameras(n, seed=SEED), partial)
        partial.rename(path)
    return path


def _schema_key() -> str:
    """Changes when the store's migrations change, so a cached data directory is not reused across."""
    import hashlib

    from bench.core import REPO_ROOT

    digest = hashlib.sha256()
    for p in sorted((REPO_ROOT / "reference_server" / "store" / "migrations").glob("*.sql")):
        digest.update(p.name.encode() + p.read_bytes())
    return digest.hexdigest()[:10]


def imported_data_dir(n: int, log: Callable[[str], None]) -> Path:
    """A center data directory holding ``n`` synthetic cameras, imported with ``ansim cameras import``
    (made once per size and store schema; copy it before starting a center on it)."""
    import shutil
    import subprocess
    import sys

    from bench.procs import child_env

    path = CACHE_DIR / f"center-{n}-{SEED}-{_schema_key()}"
    if not path.is_dir():
        log(f"importing {n:,} cameras into a cached data directory (once)")
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        command = [sys.executable, "-c", "from ansim_sdk.cli import main; main()", "cameras", "import"]
        subprocess.run(
            [*command, str(camera_csv(n)), "--data-dir", str(partial), "-q"],
            check=True,
            env=child_env(),
            stdout=subprocess.DEVNULL,
        )
        partial.rename(path)
    return path
