"""Report writers: canonical JSON, JUnit XML, a self-contained HTML report, and the console."""

from __future__ import annotations

from pathlib import Path

from conformance.reports.html import write_html
from conformance.reports.json_report import write_json
from conformance.reports.junit import write_junit
from conformance.results import RunResult

REPORT_FILES = {
    "json": "conformance-report.json",
    "junit": "conformance-junit.xml",
    "html": "conformance-report.html",
}


def write_reports(result: RunResult, directory: Path) -> dict[str, Path]:
    """Write every file report into ``directory`` (created if needed); returns kind → path."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {kind: directory / name for kind, name in REPORT_FILES.items()}
    write_json(result, paths["json"])
    write_junit(result, paths["junit"])
    write_html(result, paths["html"])
    return paths


__all__ = ["REPORT_FILES", "write_html", "write_json", "write_junit", "write_reports"]
