"""``conformance/test_ids.lock``: every case id ever registered, with its requirement ids.

Line format: ``<case id> <REQ>[,<REQ>…] [withdrawn]``; ``#`` starts a comment. Ids are never
reused (as Inferno locks its test ids): a new case appends its line; a removed case keeps its line,
marked ``withdrawn``; a case's requirement set may grow (update the line) but never shrink, because
a report that once showed a requirement as tested by that id must stay true.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conformance.registry import CASE_ID, Case

LOCK_PATH = Path(__file__).with_name("test_ids.lock")
HEADER = """\
# Conformance test ids, locked. One line per id ever registered: <id> <requirements> [withdrawn].
# Append new ids at the end (`ansim conformance check-ids --append`). Never delete or reuse a line:
# mark a removed test 'withdrawn'. A line's requirement set may grow but must not shrink.
"""


@dataclass(frozen=True)
class LockLine:
    id: str
    requirements: frozenset[str]
    withdrawn: bool = False

    def render(self) -> str:
        tail = " withdrawn" if self.withdrawn else ""
        return f"{self.id} {','.join(sorted(self.requirements))}{tail}"


def line_for(item: Case) -> LockLine:
    return LockLine(item.id, frozenset(item.requirements))


def parse_lock(text: str) -> tuple[list[LockLine], list[str]]:
    """The lock's lines and its syntax problems."""
    lines: list[LockLine] = []
    problems: list[str] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        parts = content.split()
        withdrawn = parts[-1] == "withdrawn"
        if withdrawn:
            parts = parts[:-1]
        if len(parts) != 2 or not CASE_ID.match(parts[0]):
            problems.append(f"test_ids.lock:{n}: expected '<TC id> <REQ,REQ…> [withdrawn]', got {raw!r}")
            continue
        lines.append(LockLine(parts[0], frozenset(parts[1].split(",")), withdrawn))
    return lines, problems


@dataclass
class LockCheck:
    errors: list[str]
    warnings: list[str]
    #: Lines to append for new ids.
    missing: list[LockLine]
    #: Lines whose requirement set grew: id → the new line.
    grown: dict[str, LockLine]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_lock(cases: Iterable[Case], text: str) -> LockCheck:
    """Compare the registered cases with the lock text."""
    lines, errors = parse_lock(text)
    check = LockCheck(errors, [], [], {})
    locked: dict[str, LockLine] = {}
    for line in lines:
        if line.id in locked:
            check.errors.append(f"{line.id}: appears twice in the lock")
        locked[line.id] = line
    registered = {c.id: c for c in cases}
    for case_id, item in sorted(registered.items()):
        wanted = line_for(item)
        found = locked.get(case_id)
        if found is None:
            check.missing.append(wanted)
            check.errors.append(f"{case_id}: not in the lock; append: {wanted.render()}")
            continue
        line = found
        if line.withdrawn:
            check.errors.append(f"{case_id}: the id was withdrawn and must not be reused; choose a new id")
        elif not line.requirements <= wanted.requirements:
            lost = ", ".join(sorted(line.requirements - wanted.requirements))
            check.errors.append(
                f"{case_id}: its requirements shrank (no longer {lost}); ids are never repurposed"
            )
        elif wanted.requirements != line.requirements:
            check.grown[case_id] = wanted
            check.warnings.append(f"{case_id}: requirements grew; update the line to: {wanted.render()}")
    for case_id, line in sorted(locked.items()):
        if case_id not in registered and not line.withdrawn:
            check.errors.append(
                f"{case_id}: locked but no longer registered; mark it withdrawn: {line.render()} withdrawn"
            )
    return check


def append_and_update(text: str, check: LockCheck) -> str:
    """The lock text with grown lines updated in place and missing lines appended (never removes)."""
    if not text.strip():
        text = HEADER
    out: list[str] = []
    for raw in text.splitlines():
        parts = raw.split("#", 1)[0].split()
        if parts and parts[0] in check.grown and "withdrawn" not in parts:
            out.append(check.grown[parts[0]].render())
        else:
            out.append(raw)
    out += [line.render() for line in check.missing]
    return "\n".join(out) + "\n"
