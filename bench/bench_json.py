"""Issue 6 §5: JSON validation of every document in spec/examples/valid.

Candidates: the project's full path (``validate_json``: JSON Schema, then proto3 JSON parse and
protovalidate with CEL) and its schema stage alone (``schema_problems``). Baseline: a
python-jsonschema validator built once per message type with the same schemas and registry, the
least a user of the published schemas would do. jsonschema-rs and fastjsonschema are reported when
installed (``pip install -e .[bench]``). Figures are µs per document over the whole set, the median
of interleaved rounds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bench.core import REPO_ROOT, Context, Row, median

SUFFIX = ".schema.json"

Doc = tuple[str, str, Any]  # (message type, text, parsed)
Check = Callable[[Doc], bool]

RS_REGEX_SIZE_LIMIT = 2**30  # bytes of compiled regex program jsonschema-rs may build (default 10 MB)


def documents() -> list[Doc]:
    docs = []
    for path in sorted((REPO_ROOT / "spec" / "examples" / "valid").glob("*/*.json")):
        text = path.read_text(encoding="utf-8")
        docs.append((path.parent.name, text, json.loads(text)))
    return docs


def _jsonschema_checks(types: set[str]) -> Check:
    import jsonschema
    import referencing
    import referencing.jsonschema

    from ansim_sdk.jsonvalidation import load_schema

    def retrieve(uri: str) -> referencing.Resource[Any]:
        return referencing.jsonschema.DRAFT202012.create_resource(load_schema(uri[: -len(SUFFIX)]))

    registry: referencing.Registry[Any] = referencing.Registry(retrieve=retrieve)  # type: ignore[call-arg]
    validators = {}
    for t in types:
        schema = load_schema(t)
        cls = jsonschema.validators.validator_for(schema)
        validators[t] = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
    return lambda d: bool(validators[d[0]].is_valid(d[2]))


def _rs_checks(types: set[str]) -> Check | None:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    from ansim_sdk.jsonvalidation import load_schema

    def retrieve(uri: str) -> Any:
        return load_schema(uri.rsplit("/", 1)[-1][: -len(SUFFIX)])

    # The generated base64 pattern (``^(?=[A-Za-z0-9+/_-]{2,1398102}={0,2}$)...``) needs
    # fancy-regex for its lookahead, which hands the lookahead's body to the regex crate; that
    # crate expands the bounded repetition into a program over its default 10 MB size limit
    # (≈ 200–400 MB here), so the limit is raised for the compile of the schema and of the
    # meta-schema's "regex" format check. Compiling every schema then takes seconds and
    # ≈ 1.3 GiB of RSS; it is outside the timed rounds.
    options = jsonschema_rs.FancyRegexOptions(size_limit=RS_REGEX_SIZE_LIMIT)
    validators = {
        t: jsonschema_rs.validator_for(load_schema(t), retriever=retrieve, pattern_options=options)
        for t in types
    }
    return lambda d: bool(validators[d[0]].is_valid(d[2]))


def _fast_checks(types: set[str]) -> Check | None:
    try:
        import fastjsonschema
    except ImportError:
        return None
    from ansim_sdk.jsonvalidation import load_schema

    handlers = {"": lambda uri: load_schema(uri[: -len(SUFFIX)])}
    validators = {t: fastjsonschema.compile(load_schema(t), handlers=handlers) for t in types}

    def check(d: Doc) -> bool:
        try:
            validators[d[0]](d[2])
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check


def run(ctx: Context) -> list[Row]:
    from ansim_sdk.jsonvalidation import schema_problems, validate_json

    docs = documents()
    types = {d[0] for d in docs}
    contenders: dict[str, Check | None] = {
        "project validate_json": lambda d: not validate_json(d[0], d[1]),
        "project schema stage": lambda d: not schema_problems(d[0], d[2]),
        "python-jsonschema": _jsonschema_checks(types),
    }
    unsupported: dict[str, str] = {}
    for name, make in (("jsonschema-rs", _rs_checks), ("fastjsonschema", _fast_checks)):
        try:
            contenders[name] = make(types)
        except Exception as error:  # a schema this validator cannot compile: report, do not fail the run
            contenders[name] = None
            unsupported[name] = f"cannot compile every schema: {type(error).__name__}: {str(error)[:100]}"
    active = {name: fn for name, fn in contenders.items() if fn is not None}
    rejected = {name: sum(not fn(d) for d in docs) for name, fn in active.items()}
    for _ in range(2):  # python-jsonschema and referencing fill caches over the first rounds
        for fn in active.values():
            for d in docs:
                fn(d)
    ctx.log(f"json: {len(docs)} documents of {len(types)} types, {ctx.sizes.json_rounds} rounds")

    samples: dict[str, list[float]] = {name: [] for name in active}
    for r in range(ctx.sizes.json_rounds):
        order = list(active.items())
        if r % 2:
            order.reverse()
        for name, fn in order:
            t0 = time.perf_counter()
            for d in docs:
                fn(d)
            samples[name].append((time.perf_counter() - t0) / len(docs) * 1e6)

    base = median(samples["python-jsonschema"])
    rows = []
    for name in contenders:
        if name not in active:
            note = unsupported.get(name, "not installed: pip install -e .[bench]")
            rows.append(Row(f"json.{name}", None, "", status="pending", note=note))
            continue
        note = f"{len(docs)} docs" + (f", rejected {rejected[name]}" if rejected[name] else "")
        baseline = None if name == "python-jsonschema" else base
        figure = median(samples[name])
        rows.append(Row(f"json.{name}", figure, "µs/doc", baseline, "python-jsonschema", note=note))
    return rows
