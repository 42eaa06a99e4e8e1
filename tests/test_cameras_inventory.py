"""CameraInventory: the compact key → (id, position) table, through loads, changes and compaction."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from reference_server.domain.cameras import inventory as inv
from reference_server.domain.cameras.inventory import CameraInventory, _Table


def test_table_matches_a_dict_through_changes_and_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inv, "COMPACT_AFTER", 50)
    rng = random.Random(3)
    table, model = _Table(), {}
    keys = list(range(0, 2000, 2))
    ids = [f"cam-{k}-{'가' * (k % 3)}" for k in keys]
    table.extend_sorted(
        np.array(keys, np.int64), np.array(keys, np.float64) / 100, np.array(keys, np.float64) / 50, ids
    )
    model = {k: (i, k / 100, k / 50) for k, i in zip(keys, ids, strict=True)}
    for step in range(3000):
        key = rng.randrange(2100)
        if rng.random() < 0.3:
            table.put(key, None)
            model.pop(key, None)
        else:
            entry = (f"c{key}-{step}", rng.uniform(33, 38), rng.uniform(125, 130))
            table.put(key, entry)
            model[key] = entry
        assert len(table) == len(model)
    for key in range(2100):
        assert table.get(key) == model.get(key)
    table.compact()
    assert all(table.get(k) == model.get(k) for k in range(2100)) and len(table) == len(model)


def test_load_and_refresh_search_like_before(tmp_path: object) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE cameras (key INTEGER PRIMARY KEY, camera_id TEXT, purpose INTEGER, latitude REAL,"
        " longitude REAL, searchable INTEGER, change_seq INTEGER)"
    )
    rows = [(k, f"c-{k:04d}", 1, 37.57 + k * 1e-5, 126.98, int(k % 7 != 0), 1) for k in range(1, 500)]
    conn.executemany("INSERT INTO cameras VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    inventory = CameraInventory("centers/t")
    inventory.load(conn)
    assert len(inventory) == sum(r[5] for r in rows) and inventory.change_seq == 1
    hits = inventory.search(37.57, 126.98, 50, 5)
    assert [cid for _, cid, _ in hits] == ["c-0001", "c-0002", "c-0003", "c-0004", "c-0005"]
    inventory.apply(
        [
            {
                "key": 2,
                "camera_id": "c-0002",
                "purpose": 1,
                "latitude": 0,
                "longitude": 0,
                "searchable": 0,
                "change_seq": 2,
            },
            {
                "key": 900,
                "camera_id": "c-0900",
                "purpose": 1,
                "latitude": 37.57,
                "longitude": 126.98,
                "searchable": 1,
                "change_seq": 2,
            },
        ]
    )
    hits = inventory.search(37.57, 126.98, 50, 3)
    assert [cid for _, cid, _ in hits] == ["c-0900", "c-0001", "c-0003"] and inventory.change_seq == 2
    assert [n.name for n in inventory.nearby(37.57, 126.98, 50, 1)] == ["centers/t/cameras/c-0900"]


def test_nearby_asked_again_follows_every_inventory_change() -> None:
    """EMG-033: a repeated question (a second press at the same point) is answered from memory only
    while the searchable inventory is unchanged; a camera added or removed since shows at once."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE cameras (key INTEGER PRIMARY KEY, camera_id TEXT, purpose INTEGER, latitude REAL,"
        " longitude REAL, searchable INTEGER, change_seq INTEGER)"
    )
    rows = [(k, f"c-{k:04d}", 1, 37.57 + k * 1e-5, 126.98, 1, 1) for k in range(1, 50)]
    conn.executemany("INSERT INTO cameras VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    inventory = CameraInventory("centers/t")
    inventory.load(conn)

    def names() -> list[str]:
        return [n.name.rsplit("/", 1)[1] for n in inventory.nearby(37.57, 126.98, 50, 3)]

    assert names() == ["c-0001", "c-0002", "c-0003"]
    assert names() == ["c-0001", "c-0002", "c-0003"]
    added = {"camera_id": "c-0900", "purpose": 1, "latitude": 37.57, "longitude": 126.98}
    inventory.apply([{"key": 900, **added, "searchable": 1, "change_seq": 2}])
    assert names() == ["c-0900", "c-0001", "c-0002"]
    inventory.apply([{"key": 1, **added, "camera_id": "c-0001", "searchable": 0, "change_seq": 3}])
    assert names() == ["c-0900", "c-0002", "c-0003"]
    conn.execute("UPDATE cameras SET searchable = 0, change_seq = 4 WHERE key = 2")
    inventory.load(conn)  # a rebuild from the store (start-up) voids the memo too
    assert names() == ["c-0001", "c-0003", "c-0004"]
