"""The answers of the last few ``CameraInventory.nearby`` questions, valid for one inventory version.

A reporter who presses SOS again, or a phone that repeats its fix, asks for the cameras around the
very same point; the answer is exact only while the searchable inventory is unchanged, so every
answer is kept under the inventory's version at the time it was computed and counts only while the
version is still the same (EMG-033: nearest to the current location, no approximation).
"""

from __future__ import annotations

from collections import OrderedDict

from reference_server.domain.ports import NearbyCamera

#: Distinct points remembered (least recently used dropped first).
MEMO_POINTS = 256
Question = tuple[float, float, float, int]


class NearbyMemo:
    """``(latitude, longitude, radius_m, limit)`` → the cameras found, under an inventory version."""

    def __init__(self, size: int = MEMO_POINTS) -> None:
        self._size = size
        self._answers: OrderedDict[Question, tuple[int, tuple[NearbyCamera, ...]]] = OrderedDict()

    def get(self, question: Question, version: int) -> list[NearbyCamera] | None:
        found = self._answers.get(question)
        if found is None or found[0] != version:
            return None
        self._answers.move_to_end(question)
        return list(found[1])

    def put(self, question: Question, version: int, answer: list[NearbyCamera]) -> None:
        self._answers[question] = (version, tuple(answer))
        self._answers.move_to_end(question)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)
