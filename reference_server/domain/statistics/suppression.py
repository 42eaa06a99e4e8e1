"""Small-count suppression with k = 5 and the complementary suppression of spec §18.3."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

K = 5

Bucket = tuple[Hashable, ...]


def primary(count: int) -> bool:
    """A figure whose true value is 1 to k-1 is withheld [STA-004]."""
    return 0 < count < K


def suppress(buckets: Sequence[Bucket], counts: Sequence[int]) -> list[bool]:
    """Which buckets to publish as suppressed.

    ``buckets`` are the combinations of dimension values, already in bucket order (sorted by the
    dimensions in ``group_by`` order); ``counts`` their true counts. Lines are the sets of buckets
    that agree on every dimension but one; they are visited in ``group_by`` order of the varying
    dimension, then in bucket order of their first bucket, until nothing changes [STA-005].
    """
    marked = [primary(c) for c in counts]
    if not buckets:
        return marked
    dimensions = len(buckets[0])
    lines_by_dimension: list[list[list[int]]] = []
    for varying in range(dimensions):
        grouped: dict[Bucket, list[int]] = {}
        for index, bucket in enumerate(buckets):
            key = bucket[:varying] + bucket[varying + 1 :]
            grouped.setdefault(key, []).append(index)  # insertion order = bucket order
        lines_by_dimension.append(list(grouped.values()))
    changed = True
    while changed:
        changed = False
        for lines in lines_by_dimension:
            for line in lines:
                chosen = [i for i in line if marked[i]]
                if not chosen or (len(chosen) > 1 and sum(counts[i] for i in chosen) >= K):
                    continue
                candidates = [i for i in line if not marked[i] and counts[i] > 0]
                if not candidates:
                    continue  # the line's sum is below k and suppressed wherever published
                smallest = min(candidates, key=lambda i: (counts[i], i))
                marked[smallest] = True
                changed = True
    return marked
