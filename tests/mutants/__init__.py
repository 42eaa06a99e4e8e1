"""Deliberately broken reference centers: the conformance suite's tests of itself (issue 5).

Each module is one mutant: a small patch of the reference applied at start-up with

    ansim serve --demo --plugin tests.mutants.<name>:install

``install(ctx, server)`` monkeypatches exactly one function or method of the reference's domain (or
of the reflection service it runs) and registers nothing (returns ``[]``). The module docstring
names the defect; ``CAUGHT_BY`` lists the conformance cases that must fail because of it, and
tests/test_conformance_mutants.py checks that they do — and that unrelated cases still pass.

Never import a mutant's ``install`` into a process that serves anything real.
"""

from __future__ import annotations

#: Module names of the mutants, in the order of the issue's list.
MUTANTS = (
    "video_without_ack",
    "ignores_request_id",
    "resume_drops_event",
    "accepts_latitude_91",
    "ward_track_to_other_guardian",
    "wrong_json_name",
    "keeps_test_traces",
    "leaks_test_to_live",
    "cursor_scope_unchecked",
    "trip_fixes_not_forwarded",
    "replay_into_shared_scope",
)
