"""The ``fed_routes`` rows as last committed, by home emergency: read through, forgotten on write.

Each fix of an emergency raised here asks for its route (relay to the handling center, FED-016;
the home-handoff watch, FED-019), which was one query on a reader thread per SOS press. Every
writer of ``fed_routes`` calls :meth:`RouteCache.changed` in the transaction that writes the row:
the row is forgotten at once (a rollback then costs one more read) and again when the transaction
commits, and a read that was under way across either moment is not kept. The cache starts empty,
so after a restart every row is read from the store again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from reference_server.store.interface import Store, Transaction

#: Routes kept (least recently used dropped first); an emergency's route is asked per fix.
CACHED_ROUTES = 10_000
Route = Mapping[str, Any]


class RouteCache:
    def __init__(self, store: Store, size: int = CACHED_ROUTES) -> None:
        self._store = store
        self._size = size
        self._rows: OrderedDict[str, Route | None] = OrderedDict()
        self._generation = 0  # bumped by every forget: a read begun before it is not kept

    def __len__(self) -> int:
        return len(self._rows)

    async def get(self, home_emergency: str) -> Route | None:
        """The route's row (``None``: no route), from memory when no write touched it since."""
        if home_emergency in self._rows:
            self._rows.move_to_end(home_emergency)
            return self._rows[home_emergency]
        generation = self._generation
        row = await self._store.fetchone(
            "SELECT * FROM fed_routes WHERE home_emergency = ?", (home_emergency,)
        )
        if generation == self._generation:
            self._rows[home_emergency] = row
            while len(self._rows) > self._size:
                self._rows.popitem(last=False)
        return row

    def changed(self, tx: Transaction, home_emergency: str) -> None:
        """Called by a writer of the route's row, in the transaction that writes it."""
        self._forget(home_emergency)
        tx.on_commit(lambda: self._forget(home_emergency))

    def _forget(self, home_emergency: str) -> None:
        self._generation += 1
        self._rows.pop(home_emergency, None)
