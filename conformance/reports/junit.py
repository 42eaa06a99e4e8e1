"""JUnit XML for CI systems: one <testsuite> per declared profile, one <testcase> per case in it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.results import CaseResult, RunResult, Verdict


def _case(parent: ET.Element, profile: str, item: CaseResult) -> None:
    element = ET.SubElement(
        parent,
        "testcase",
        name=f"{item.id} {item.title}",
        classname=f"ansim.conformance.{profile}",
        time=f"{item.duration_s:.3f}",
    )
    text = item.message
    if item.failing_exchange is not None:
        exchange = item.exchanges[item.failing_exchange]
        text += "\n\n" + json.dumps(exchange, ensure_ascii=False, indent=2)
    label = f"{item.level} {', '.join(item.requirements)}: {item.message}"
    if item.verdict == Verdict.FAIL:
        ET.SubElement(element, "failure", message=label, type=item.level).text = text
    elif item.verdict == Verdict.ERROR:
        ET.SubElement(element, "error", message=label, type="error").text = text
    elif item.verdict in (Verdict.SKIP, Verdict.NOT_APPLICABLE, Verdict.NOT_RUN):
        ET.SubElement(element, "skipped", message=f"{item.verdict.value}: {item.message}")
    if item.notes:
        ET.SubElement(element, "system-out").text = "\n".join(item.notes)


def junit_tree(result: RunResult) -> ET.ElementTree[ET.Element[str]]:
    root = ET.Element("testsuites", name="ansim-conformance", time=f"{result.duration_s:.3f}")
    for profile in result.profiles_declared:
        mine = [c for c in result.cases if profile in c.profiles]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=profile,
            tests=str(len(mine)),
            failures=str(sum(c.verdict == Verdict.FAIL for c in mine)),
            errors=str(sum(c.verdict == Verdict.ERROR for c in mine)),
            skipped=str(
                sum(c.verdict in (Verdict.SKIP, Verdict.NOT_APPLICABLE, Verdict.NOT_RUN) for c in mine)
            ),
            time=f"{sum(c.duration_s for c in mine):.3f}",
            timestamp=result.started,
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("profile_verdict", result.profiles[profile].verdict.value),
            ("suite_version", result.suite_version),
            ("spec_version", result.spec_version),
            ("schema_version", result.schema_version),
            ("target", result.target),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        for item in mine:
            _case(suite, profile, item)
    tree: ET.ElementTree[ET.Element[str]] = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(result: RunResult, path: Path) -> None:
    junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
