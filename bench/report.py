"""python -m bench.report [RESULTS.json …] — the results as a Markdown table (for bench/README.md).

Several files are merged in order (a later file's rows replace an earlier file's rows of the same
benchmark group, e.g. a separate ``--only fanout`` run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import DEFAULT_OUT


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def merge(paths: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        new = json.loads(path.read_text(encoding="utf-8"))["results"]
        groups = {r["benchmark"].split(".")[0] for r in new}
        rows = [r for r in rows if r["benchmark"].split(".")[0] not in groups] + new
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| benchmark | figure | baseline | ratio | target | met? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        name = (r["benchmark"] + (f" — {r['note']}" if r["note"] else "")).replace("|", "\\|")
        if r["status"] != "ok":
            lines.append(f"| {name} | *{r['status']}* | | | | |")
            continue
        base = (
            f"{_fmt(r['baseline'])} {r['unit']} ({r['baseline_name']})" if r["baseline"] is not None else ""
        )
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3g}×"
        target = r["target"]["label"] if r["target"] else ""
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {name} | {_fmt(r['figure'])} {r['unit']} | {base} | {ratio} | {target} | {met} |")
    return "\n".join(lines)


def main() -> None:
    """``python -m bench.report [--write OUT] [FILE …]``: print the Markdown table of the merged files;
    with ``--write``, also write the merged results (with each source's machine and commit) to OUT."""
    args = sys.argv[1:]
    out = None
    if args[:1] == ["--write"]:
        out, args = Path(args[1]), args[2:]
    paths = [Path(p) for p in args] or [DEFAULT_OUT]
    rows = merge(paths)
    if out is not None:
        sources = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
        merged = {
            "merged_from": [
                {k: v for k, v in s.items() if k != "results"} | {"file": str(p)}
                for s, p in zip(sources, paths, strict=True)
            ],
            "machine": sources[-1]["machine"],
            "results": rows,
        }
        out.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown(rows))


if __name__ == "__main__":
    main()
