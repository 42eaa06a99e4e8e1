"""Known-failures lists (``--known-failures FILE``): failures a run expects, that fail it when stale.

Format (YAML), one entry per case id::

    TC_GEN_005_SRV:
      verdict: fail                # the verdict the case is expected to get (fail or error)
      reason: "json_name"          # optional: a substring its message must contain

A listed case that now passes, gets another verdict, or whose message no longer contains the reason
is stale and fails the run (like protobuf's conformance failure lists): fix the list when the
implementation is fixed. An entry for a case id that is not registered is stale too. A listed case
that did not run in this selection is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from conformance.results import CaseResult, Verdict


class KnownFailure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict = Verdict.FAIL
    reason: str | None = None


def load_known_failures(path: Path) -> dict[str, KnownFailure]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a known-failures file is a mapping of case id → {{verdict, reason}}")
    out: dict[str, KnownFailure] = {}
    for case_id, entry in raw.items():
        try:
            out[str(case_id)] = KnownFailure.model_validate(entry or {})
        except ValidationError as error:
            raise ValueError(f"{path}: {case_id}: {error.errors()[0]['msg']}") from None
        if out[str(case_id)].verdict not in (Verdict.FAIL, Verdict.ERROR):
            raise ValueError(f"{path}: {case_id}: an expected verdict is fail or error")
    return out


def apply_known_failures(
    results: Iterable[CaseResult], known: Mapping[str, KnownFailure], registered: Iterable[str]
) -> list[str]:
    """Mark each listed result ``known_failure`` = "matched" or the reason it is stale; return the
    stale entries (empty = the list is current)."""
    stale: list[str] = []
    by_id = {r.id: r for r in results}
    ids = set(registered)
    for case_id, entry in sorted(known.items()):
        if case_id not in ids:
            stale.append(f"{case_id}: listed as a known failure but no such case is registered")
            continue
        result = by_id.get(case_id)
        if result is None or result.verdict in (Verdict.NOT_RUN, Verdict.NOT_APPLICABLE):
            continue
        if result.verdict == Verdict.PASS:
            problem = "now passes: remove it from the known failures"
        elif result.verdict != entry.verdict:
            problem = f"expected verdict {entry.verdict.value}, got {result.verdict.value}: {result.message}"
        elif entry.reason and entry.reason not in result.message:
            problem = f"fails differently: message lacks {entry.reason!r}: {result.message}"
        else:
            result.known_failure = "matched"
            continue
        result.known_failure = f"stale: {problem}"
        stale.append(f"{case_id}: {problem}")
    return stale
