"""The canonical JSON report: every other report can be rebuilt from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.results import RunResult, requirement_verdicts

FORMAT = "ansim-conformance-report/1"


def report_dict(result: RunResult) -> dict[str, Any]:
    requirements = requirement_verdicts(result.cases)
    for rid, entry in requirements.items():
        entry["text"] = result.requirement_texts.get(rid, "")
    return {
        "format": FORMAT,
        "suite_version": result.suite_version,
        "spec_version": result.spec_version,
        "schema_version": result.schema_version,
        "run_id": result.run_id,
        "target": result.target,
        "declaration": result.declaration,
        "options": dict(result.options),
        "started": result.started,
        "finished": result.finished,
        "duration_s": round(result.duration_s, 3),
        "passed": result.passed,
        "exit_code": result.exit_code,
        "counts": result.counts(),
        "preflight": result.preflight,
        "notes": result.notes,
        "stale_known_failures": result.stale_known_failures,
        "profiles": {
            name: {
                "verdict": p.verdict.value,
                "passes_with_known_failures": p.passes_with_known_failures,
                "must_total": p.must_total,
                "must_passed": p.must_passed,
                "failures": p.failures,
                "incomplete": p.incomplete,
                "warnings": p.warnings,
                "known_failures": p.known,
            }
            for name, p in result.profiles.items()
        },
        "requirements": requirements,
        "cases": [
            {
                "id": c.id,
                "title": c.title,
                "profiles": list(c.profiles),
                "requirements": list(c.requirements),
                "level": c.level,
                "kind": c.kind,
                "verdict": c.verdict.value,
                "message": c.message,
                "feature_skip": c.feature_skip,
                "known_failure": c.known_failure,
                "duration_s": round(c.duration_s, 3),
                "notes": c.notes,
                "failing_exchange": c.failing_exchange,
                "exchanges": c.exchanges,
            }
            for c in result.cases
        ],
    }


def write_json(result: RunResult, path: Path) -> None:
    path.write_text(json.dumps(report_dict(result), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
