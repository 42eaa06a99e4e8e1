"""Validate ansim.v1 messages in their proto3 JSON form.

Two passes, both derived from the protos:

1. the JSON Schema of the message (``spec/schemas``, installed as the ``ansim_spec`` package), which
   checks the JSON shape and every rule JSON Schema can express, collecting all errors;
2. only if the JSON is schema-valid: ``google.protobuf.json_format.Parse`` into the generated message
   class and protovalidate, which also evaluates the CEL rules.

Every problem is reported with its JSON path (``$.location.latitude``), the rule it breaks and the
requirement ID that makes the rule normative (the nearest ``x-ansim-requirement`` on the path, the
CEL rule id, or ``JSON-001`` when no requirement is cited).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.resources
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import protovalidate
import referencing
import referencing.jsonschema
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

ANSIM_PACKAGE = "ansim.v1"
SCHEMA_SUFFIX = ".schema.json"
#: Requirement cited when a rule carries no requirement of its own: "a message is valid proto3 JSON
#: of its type".
DEFAULT_REQUIREMENT = "JSON-001"
REQUIREMENT_ID = re.compile(r"^[A-Z]{2,4}-\d{3}$")

PathElement = str | int


class UnknownMessageType(LookupError):
    """The requested message type has no schema."""


@dataclass(frozen=True)
class Problem:
    """One broken rule."""

    path: str  # JSON path, e.g. "$.location.latitude" or "$.vertices[2]"
    rule: str  # e.g. "maximum 90", "required", "cel LOC-005"
    requirement: str  # e.g. "LOC-002"
    message: str  # human-readable explanation
    source: str  # "schema", "json" (proto3 JSON parse) or "protovalidate"


def json_path(elements: Iterable[PathElement]) -> str:
    """``$``-rooted JSON path: ``$.a.b[0]``; keys that are not identifiers are quoted ``$["k-1"]``."""
    out = "$"
    for el in elements:
        if isinstance(el, int):
            out += f"[{el}]"
        elif re.fullmatch(r"[A-Za-z_@][A-Za-z0-9_]*", el):
            out += f".{el}"
        else:
            out += f"[{json.dumps(el, ensure_ascii=False)}]"
    return out


# ---------------------------------------------------------------------------- schemas


def _schema_dir() -> Any:
    return importlib.resources.files("ansim_spec").joinpath("schemas")


@cache
def available_types() -> tuple[str, ...]:
    """Full names of every message with a schema, sorted."""
    names = [
        entry.name[: -len(SCHEMA_SUFFIX)]
        for entry in _schema_dir().iterdir()
        if entry.name.endswith(SCHEMA_SUFFIX)
    ]
    return tuple(sorted(names))


def resolve_type(name: str) -> str:
    """Full message name for ``ansim.v1.Location``, ``Location`` or ``Location.Ellipse``."""
    types = available_types()
    candidates = [name, f"{ANSIM_PACKAGE}.{name}"]
    for candidate in candidates:
        if candidate in types:
            return candidate
    short = [t[len(ANSIM_PACKAGE) + 1 :] for t in types]
    close = difflib.get_close_matches(name.removeprefix(ANSIM_PACKAGE + "."), short, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownMessageType(f"unknown message type {name!r}{hint}")


@cache
def load_schema(full_name: str) -> dict[str, Any]:
    """The JSON Schema of message ``full_name`` (as installed with the ``ansim_spec`` package)."""
    entry = _schema_dir().joinpath(full_name + SCHEMA_SUFFIX)
    if not entry.is_file():
        raise UnknownMessageType(f"no schema for {full_name}")
    schema: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    return schema


def _retrieve(uri: str) -> referencing.Resource[Any]:
    if not uri.endswith(SCHEMA_SUFFIX):
        raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]
    return referencing.jsonschema.DRAFT202012.create_resource(load_schema(uri[: -len(SCHEMA_SUFFIX)]))


@cache
def _registry() -> referencing.Registry[Any]:
    return referencing.Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def _validator(full_name: str) -> Any:
    schema = load_schema(full_name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


def _resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow a ``$ref`` (to another schema file or to ``#/$defs/...``); return (schema, its root)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema, root
    if ref.startswith("#/$defs/"):
        target: dict[str, Any] = root.get("$defs", {}).get(ref[len("#/$defs/") :], {})
        return target, root
    if ref.endswith(SCHEMA_SUFFIX):
        other = load_schema(ref[: -len(SCHEMA_SUFFIX)])
        return other, other
    return schema, root


def _child(schema: dict[str, Any], el: PathElement) -> Any:
    if isinstance(el, int):
        return schema.get("items")
    props = schema.get("properties")
    if isinstance(props, dict) and el in props:
        return props[el]
    return schema.get("additionalProperties")


def requirement_for(full_name: str, path: Sequence[PathElement]) -> str:
    r"""Nearest ``x-ansim-requirement`` along ``path`` in the schema of ``full_name``.

    Walks from the message down the JSON path (through ``$ref``\ s to other messages); the deepest
    schema on the way that cites a requirement wins. ``JSON-001`` when none does.
    """
    found: Any = None

    def visit(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        nonlocal found
        for _ in range(8):  # a $ref chain is at most property -> message; bounded for safety
            found = node.get("x-ansim-requirement", found)
            if "$ref" not in node:
                break
            node, root = _resolve_ref(node, root)
        return node, root

    root = load_schema(full_name)
    node, root = visit(root, root)
    for el in path:
        nxt = _child(node, el)
        if not isinstance(nxt, dict):
            break
        node, root = visit(nxt, root)
    return str(found) if found else DEFAULT_REQUIREMENT


# ---------------------------------------------------------------------------- unexpressed rules

#: protovalidate rule-id prefix -> the schema key that lists such rules as not expressed.
UNEXPRESSED_KEYS = {
    "timestamp": "x-ansim-timestamp-rules",
    "duration": "x-ansim-duration-rules",
    "bytes": "x-ansim-bytes-rules",
    "any": "x-ansim-any-rules",
}
UTF8_BYTE_RULES = {"len_bytes", "min_bytes", "max_bytes"}
_PATH_TOKEN = re.compile(r'\.([A-Za-z_@][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def parse_json_path(path: str) -> list[PathElement]:
    """Inverse of :func:`json_path`: ``$.a[0]["k-1"]`` -> ``["a", 0, "k-1"]``."""
    if not path.startswith("$"):
        raise ValueError(f"not a JSON path: {path!r}")
    out: list[PathElement] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"not a JSON path: {path!r}")
        name, index, quoted = match.groups()
        out.append(name if name is not None else int(index) if index is not None else json.loads(quoted))
        pos = match.end()
    return out


def _schemas_at(full_name: str, path: Sequence[PathElement]) -> list[dict[str, Any]]:
    """The schema nodes describing the value at ``path``: its property schema and the ``$ref`` chain."""
    root = load_schema(full_name)
    chain = [root]
    node = root
    for el in path:
        nxt = _child(node, el)
        if not isinstance(nxt, dict):
            return []
        chain = [nxt]
        node = nxt
        for _ in range(8):
            if "$ref" not in node:
                break
            node, root = _resolve_ref(node, root)
            chain.append(node)
    return chain


def declared_unexpressed(full_name: str, problem: Problem) -> bool:
    """True if the schema of ``full_name`` lists the rule ``problem`` breaks as not expressible.

    Only protovalidate problems qualify; the rule must be listed on the field or message it is
    reported at: a CEL rule by its id under ``x-ansim-cel``, a timestamp, duration, bytes or Any rule
    under ``x-ansim-<kind>-rules``, a well-known string format under ``x-ansim-string-format``, a
    UTF-8 byte length under ``x-ansim-utf8-bytes``. Everything else the JSON Schema enforces itself,
    so a message that breaks it and still passes its schema is a schema bug.
    """
    if problem.source != "protovalidate":
        return False
    nodes = _schemas_at(full_name, parse_json_path(problem.path))
    rule = problem.rule.removeprefix("cel ")
    if any(rule == cel.get("id") for node in nodes for cel in node.get("x-ansim-cel", [])):
        return True
    kind, _, name = rule.partition(".")
    key = UNEXPRESSED_KEYS.get(kind)
    if key is not None:
        return any(key in node for node in nodes)
    if kind == "string":
        if name in UTF8_BYTE_RULES:
            return any("x-ansim-utf8-bytes" in node for node in nodes)
        formats = {node["x-ansim-string-format"] for node in nodes if "x-ansim-string-format" in node}
        return any(name == fmt or name.startswith(fmt + "_") for fmt in formats)
    return False


def schema_misses(full_name: str, text: str) -> list[Problem]:
    """Proto problems of ``text`` that its schema should have caught but did not.

    Empty if the schema rejects the JSON, or if every rule the JSON breaks is one the schema lists
    as not expressible (:func:`declared_unexpressed`). Used to keep the schemas honest.
    """
    if schema_problems(full_name, json.loads(text)):
        return []
    return [p for p in proto_problems(full_name, text) if not declared_unexpressed(full_name, p)]


# ---------------------------------------------------------------------------- pass 1: schema


def _rule_text(error: jsonschema.ValidationError) -> str:
    keyword = str(error.validator)
    value = error.validator_value
    if keyword in ("additionalProperties", "unevaluatedProperties") and value is False:
        return f"{keyword} false"
    if keyword == "not" and isinstance(value, dict) and "required" in value:
        return f"oneof: at most one of {', '.join(value['required'])}"
    if keyword == "required":
        return "required"
    if keyword == "enum" and isinstance(value, list) and len(value) > 3:
        return f"enum ({len(value)} allowed values, see message)"
    return f"{keyword} {json.dumps(value, ensure_ascii=False)}"


def _flatten(errors: Iterable[jsonschema.ValidationError]) -> Iterator[jsonschema.ValidationError]:
    """Replace an anyOf/oneOf error by its branch errors when the instance had the branch's type.

    A double accepts a number or "NaN"/"Infinity"; for 91 the useful error is "maximum 90", not
    "91 is not valid under any of the given schemas".
    """
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            specific = [e for e in error.context if e.validator != "type"]
            if specific:
                yield from _flatten(specific)
                continue
        yield error


def schema_problems(full_name: str, instance: Any) -> list[Problem]:
    """Every JSON Schema violation of ``instance`` as message ``full_name``."""
    problems = []
    for error in _flatten(_validator(full_name).iter_errors(instance)):
        path: list[PathElement] = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            for prop in missing:
                full = [*path, prop]
                problems.append(
                    Problem(
                        json_path(full), "required", requirement_for(full_name, full), error.message, "schema"
                    )
                )
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            for prop in sorted(k for k in error.instance if k not in known):
                full = [*path, prop]
                problems.append(
                    Problem(
                        json_path(full),
                        "additionalProperties false",
                        requirement_for(full_name, path),
                        f"unknown field {prop!r}",
                        "schema",
                    )
                )
            continue
        problems.append(
            Problem(
                json_path(path), _rule_text(error), requirement_for(full_name, path), error.message, "schema"
            )
        )
    problems.sort(key=lambda p: (p.path, p.rule))
    return problems


# ---------------------------------------------------------------------------- pass 2: proto


#: Modules outside ansim.v1 whose messages may appear packed in a ``google.protobuf.Any`` (the
#: details of a ``google.rpc.Status``: ErrorInfo, BadRequest, RetryInfo…) or as well-known types.
#: json_format resolves an Any's ``@type`` in the default pool, so they must be imported.
WELL_KNOWN_MODULES = (
    "google.rpc.error_details_pb2",
    "google.rpc.status_pb2",
    "google.protobuf.any_pb2",
    "google.protobuf.duration_pb2",
    "google.protobuf.empty_pb2",
    "google.protobuf.field_mask_pb2",
    "google.protobuf.struct_pb2",
    "google.protobuf.timestamp_pb2",
    "google.protobuf.wrappers_pb2",
)


@cache
def _load_generated_modules() -> None:
    """Import every generated ``ansim.v1.*_pb2`` module so its messages are in the default pool.

    The well-known and ``google.rpc`` detail modules are imported too, so that a message embedding
    a ``google.rpc.Status`` whose details hold an ``ErrorInfo`` parses.
    """
    for module in WELL_KNOWN_MODULES:
        importlib.import_module(module)
    package = importlib.resources.files("ansim.v1")
    for entry in sorted(package.iterdir(), key=lambda e: e.name):
        if entry.name.endswith("_pb2.py"):
            importlib.import_module(f"ansim.v1.{entry.name[:-3]}")


def message_class(full_name: str) -> type[Message]:
    """The generated message class of ``full_name``."""
    _load_generated_modules()
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError as exc:
        raise UnknownMessageType(f"no generated class for {full_name} (regenerate gen/python)") from exc
    return message_factory.GetMessageClass(desc)


def _proto_path_to_json(desc: Descriptor, violation: Any) -> list[PathElement]:
    path: list[PathElement] = []
    field_path = violation.field
    if field_path is None:
        return path
    current: Descriptor | None = desc
    for el in field_path.elements:
        fd = current.fields_by_name.get(el.field_name) if current is not None else None
        path.append(fd.json_name if fd is not None else el.field_name)
        sub = el.subscript
        if sub is not None:
            path.append(sub.value if isinstance(sub.value, int) and sub.field == "index" else str(sub.value))
        if fd is not None and fd.message_type is not None:
            mt = fd.message_type
            if mt.GetOptions().map_entry:
                current = mt.fields_by_name["value"].message_type if sub is not None else None
            else:
                current = mt
        else:
            current = None
    return path


def proto_problems(full_name: str, text: str) -> list[Problem]:
    """Problems found by proto3 JSON parsing and protovalidate (CEL rules included)."""
    cls = message_class(full_name)
    msg = cls()
    try:
        json_format.Parse(text, msg)
    except json_format.ParseError as exc:
        return [Problem("$", "proto3 JSON", DEFAULT_REQUIREMENT, str(exc), "json")]
    problems = []
    for violation in protovalidate.collect_violations(msg):
        v = violation.proto
        path = _proto_path_to_json(cls.DESCRIPTOR, v)  # type: ignore[arg-type]
        rule_id = v.rule_id or ""
        if REQUIREMENT_ID.match(rule_id):
            requirement = rule_id
            rule = f"cel {rule_id}"
        else:
            requirement = requirement_for(full_name, path)
            rule = rule_id or "protovalidate"
        problems.append(Problem(json_path(path), rule, requirement, v.message or rule, "protovalidate"))
    problems.sort(key=lambda p: (p.path, p.rule))
    return problems


def validate_json(full_name: str, text: str) -> list[Problem]:
    """All problems of the JSON ``text`` as message ``full_name`` (empty list = valid).

    Raises ``json.JSONDecodeError`` if ``text`` is not JSON, ``UnknownMessageType`` for a bad type.
    """
    instance = json.loads(text)
    problems = schema_problems(full_name, instance)
    if problems:
        return problems
    return proto_problems(full_name, text)
