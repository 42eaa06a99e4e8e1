"""The self-contained HTML report (one file, inline CSS, no scripts or external assets) that a
municipality can attach to a procurement file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from conformance.reports.json_report import report_dict
from conformance.results import RunResult

TEMPLATE = "report.html.j2"


def _template() -> jinja2.Template:
    source = (
        resources.files("conformance.reports").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["pretty"] = _pretty
    return env.from_string(source)


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def render_html(result: RunResult) -> str:
    template = _template()
    data: dict[str, Any] = report_dict(result)
    failures = [c for c in data["cases"] if c["verdict"] in ("fail", "error")]
    return template.render(report=data, failures=failures)


def write_html(result: RunResult, path: Path) -> None:
    path.write_text(render_html(result), encoding="utf-8")
