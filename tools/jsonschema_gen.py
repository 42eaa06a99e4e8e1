"""Derive one JSON Schema (draft 2020-12) per ansim message from the compiled protos.

The schemas describe the canonical proto3 JSON mapping of each message and carry the
``buf.validate`` rules that JSON Schema can express:

- a field whose rules reject its default value is in ``required`` (proto3 JSON omits default
  values, so an absent field *is* the default): ``required: true``, a string with ``min_len`` >= 1,
  a UUID, a pattern that does not match "", an enum with ``not_in: [0]``, a number range excluding
  0, a repeated field with ``min_items`` >= 1…;
- ranges of 64-bit integers (JSON strings) and whole-second ``Duration`` ranges become exact
  patterns; byte lengths become exact patterns over the base64 text.

Rules it cannot express are listed, and only they, under ``x-ansim-*`` keys on the field or message
they belong to: ``x-ansim-cel`` (message- and field-level CEL, with their ids),
``x-ansim-timestamp-rules``, ``x-ansim-duration-rules``, ``x-ansim-bytes-rules``,
``x-ansim-any-rules``, ``x-ansim-string-format``, ``x-ansim-utf8-bytes``. ``ansim validate``
enforces them with protovalidate afterwards, and the example tests allow an invalid example to pass
its schema only if every rule it breaks is listed so.

Output is deterministic: sorted keys, 2-space indent, trailing newline.

Run directly to (re)write ``spec/schemas``::

    python -m tools.jsonschema_gen            # same as part of python -m tools.generate
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict

from tools.protoc import validate_descriptor_set

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ANSIM_PACKAGE_PREFIX = "ansim."
REQUIREMENT_TAG = re.compile(r"\[([A-Z]{2,4}-\d{3})\]")

# FieldDescriptorProto.Type values.
T = descriptor_pb2.FieldDescriptorProto
INT32_TYPES = {T.TYPE_INT32, T.TYPE_SINT32, T.TYPE_SFIXED32}
UINT32_TYPES = {T.TYPE_UINT32, T.TYPE_FIXED32}
INT64_TYPES = {T.TYPE_INT64, T.TYPE_SINT64, T.TYPE_SFIXED64}
UINT64_TYPES = {T.TYPE_UINT64, T.TYPE_FIXED64}
FLOAT_TYPES = {T.TYPE_DOUBLE, T.TYPE_FLOAT}

INT64_PATTERN = r"^-?(0|[1-9][0-9]{0,18})$"
UINT64_PATTERN = r"^(0|[1-9][0-9]{0,19})$"
BASE64_PATTERN = r"^[A-Za-z0-9+/_-]*={0,2}$"
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
DURATION_PATTERN = r"^-?\d+(\.\d{1,9})?s$"
NONNEGATIVE_DURATION_PATTERN = r"^\d+(\.\d{1,9})?s$"
FIELD_MASK_PATTERN = (
    r"^([a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*(,[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*)*)?$"
)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TUUID_PATTERN = r"^[0-9a-fA-F]{32}$"
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"

INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}

WRAPPERS = {
    "google.protobuf.DoubleValue": T.TYPE_DOUBLE,
    "google.protobuf.FloatValue": T.TYPE_FLOAT,
    "google.protobuf.Int64Value": T.TYPE_INT64,
    "google.protobuf.UInt64Value": T.TYPE_UINT64,
    "google.protobuf.Int32Value": T.TYPE_INT32,
    "google.protobuf.UInt32Value": T.TYPE_UINT32,
    "google.protobuf.BoolValue": T.TYPE_BOOL,
    "google.protobuf.StringValue": T.TYPE_STRING,
    "google.protobuf.BytesValue": T.TYPE_BYTES,
}

STRING_FORMATS = {
    "email": "email",
    "hostname": "hostname",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
    "uri": "uri",
    "uri_ref": "uri-reference",
}


def schema_file_name(full_name: str) -> str:
    """File name (and ``$id``) of the schema of the message ``full_name`` (no leading dot)."""
    return f"{full_name}.schema.json"


def requirement_of(comment: str) -> str | None:
    """The first requirement tag such as ``LOC-002`` in a comment, if any."""
    match = REQUIREMENT_TAG.search(comment)
    return match.group(1) if match else None


def clean_comment(raw: str) -> str:
    """A proto leading comment as plain text: one leading space per line removed, ends trimmed."""
    lines = [line[1:] if line.startswith(" ") else line for line in raw.split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip()


@dataclass
class _Message:
    full_name: str
    proto: Any  # DescriptorProto (dynamic message of the private pool)
    file: Any
    path: tuple[int, ...]


@dataclass
class _Index:
    messages: dict[str, _Message] = field(default_factory=dict)
    enums: dict[str, Any] = field(default_factory=dict)
    comments: dict[tuple[str, tuple[int, ...]], str] = field(default_factory=dict)

    def comment(self, file_name: str, path: tuple[int, ...]) -> str:
        return self.comments.get((file_name, path), "")


class SchemaGenerator:
    """Builds the schemas from a serialized FileDescriptorSet (with source info)."""

    def __init__(self, image: bytes) -> None:
        # A private pool holding descriptor.proto + validate.proto, so the buf.validate extensions
        # on the options are parsed as extensions (and not left as unknown fields) independent of
        # whatever is imported in this process.
        pool = descriptor_pool.DescriptorPool()
        for validate_fdp in validate_descriptor_set().file:
            pool.Add(validate_fdp)
        fds_class = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("google.protobuf.FileDescriptorSet")
        )
        self._fds: Any = cast(Any, fds_class.FromString(image))
        self._field_ext = pool.FindExtensionByName("buf.validate.field")
        self._message_ext = pool.FindExtensionByName("buf.validate.message")
        self._oneof_ext = pool.FindExtensionByName("buf.validate.oneof")
        self._index = _Index()
        for fdp in self._fds.file:
            self._index_file(fdp)

    # ------------------------------------------------------------------ indexing

    def _index_file(self, fdp: Any) -> None:
        for loc in fdp.source_code_info.location:
            if loc.leading_comments:
                self._index.comments[(fdp.name, tuple(loc.path))] = clean_comment(loc.leading_comments)
        prefix = f"{fdp.package}." if fdp.package else ""
        for enum in fdp.enum_type:
            self._index.enums[prefix + enum.name] = enum
        for i, msg in enumerate(fdp.message_type):
            self._index_message(fdp, prefix + msg.name, msg, (4, i))

    def _index_message(self, fdp: Any, full_name: str, msg: Any, path: tuple[int, ...]) -> None:
        self._index.messages[full_name] = _Message(full_name, msg, fdp, path)
        for i, nested in enumerate(msg.nested_type):
            self._index_message(fdp, f"{full_name}.{nested.name}", nested, (*path, 3, i))
        for enum in msg.enum_type:
            self._index.enums[f"{full_name}.{enum.name}"] = enum

    def ansim_messages(self) -> list[str]:
        """Full names of every ansim message (nested too, map entries excluded), sorted."""
        return sorted(
            name
            for name, m in self._index.messages.items()
            if m.file.package.startswith(ANSIM_PACKAGE_PREFIX.rstrip(".")) and not m.proto.options.map_entry
        )

    def rpc_messages(self) -> list[str]:
        """Full names of the ansim messages used as rpc request, response or stream event, sorted."""
        names: set[str] = set()
        for fdp in self._fds.file:
            if not fdp.package.startswith(ANSIM_PACKAGE_PREFIX.rstrip(".")):
                continue
            for service in fdp.service:
                for method in service.method:
                    for type_name in (method.input_type, method.output_type):
                        name = type_name.lstrip(".")
                        if name.startswith(ANSIM_PACKAGE_PREFIX):
                            names.add(name)
        return sorted(names)

    # ------------------------------------------------------------------ generation

    def generate(self) -> dict[str, str]:
        """Map of schema file name to its text, for every ansim message."""
        return {schema_file_name(name): dump(self.message_schema(name)) for name in self.ansim_messages()}

    def message_schema(self, full_name: str) -> dict[str, Any]:
        msg = self._index.messages[full_name]
        defs: dict[str, Any] = {}
        schema: dict[str, Any] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_file_name(full_name),
            "title": full_name,
        }
        schema.update(self._object_schema(msg, defs))
        comment = self._index.comment(msg.file.name, msg.path)
        if comment:
            schema["description"] = comment
            req = requirement_of(comment)
            if req:
                schema["x-ansim-requirement"] = req
        if defs:
            schema["$defs"] = defs
        return schema

    def _object_schema(self, msg: _Message, defs: dict[str, Any], *, comments: bool = True) -> dict[str, Any]:
        proto = msg.proto
        properties: dict[str, Any] = {}
        required: list[str] = []
        all_of: list[dict[str, Any]] = []
        for i, fld in enumerate(proto.field):
            rules = (
                fld.options.Extensions[self._field_ext] if fld.options.HasExtension(self._field_ext) else None
            )
            prop = self._field_schema(fld, rules, defs)
            comment = self._index.comment(msg.file.name, (*msg.path, 2, i)) if comments else ""
            if comment:
                prop = {**prop, "description": comment}
                req = requirement_of(comment)
                if req:
                    prop["x-ansim-requirement"] = req
            properties[fld.json_name] = prop
            if _must_be_present(fld, rules, self):
                required.append(fld.json_name)
        # Real oneofs (not the synthetic ones of proto3 `optional`): at most one member present.
        for oi, oneof in enumerate(proto.oneof_decl):
            members = [
                f.json_name
                for f in proto.field
                if f.HasField("oneof_index") and f.oneof_index == oi and not f.proto3_optional
            ]
            if not members:
                continue
            all_of.extend(_at_most_one(members))
            if (
                oneof.options.HasExtension(self._oneof_ext)
                and oneof.options.Extensions[self._oneof_ext].required
            ):
                all_of.append({"anyOf": [{"required": [m]} for m in members]})
        cel: list[dict[str, str]] = []
        if proto.options.HasExtension(self._message_ext):
            mrules = proto.options.Extensions[self._message_ext]
            cel.extend(_cel_list(mrules.cel, mrules.cel_expression))
            json_names = {f.name: f.json_name for f in proto.field}
            for rule in mrules.oneof:
                members = [json_names.get(n, n) for n in rule.fields]
                all_of.extend(_at_most_one(members))
                if rule.required:
                    all_of.append({"anyOf": [{"required": [m]} for m in members]})
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        if all_of:
            schema["allOf"] = all_of
        if cel:
            schema["x-ansim-cel"] = cel
        return schema

    # ------------------------------------------------------------------ fields

    def _field_schema(self, fld: Any, rules: Any, defs: dict[str, Any]) -> dict[str, Any]:
        is_required = rules is not None and rules.required
        map_entry = self._map_entry(fld)
        if map_entry is not None:
            key_fld, value_fld = map_entry.proto.field[0], map_entry.proto.field[1]
            mrules = rules.map if rules is not None and rules.HasField("map") else None
            value = self._value_schema(
                value_fld, mrules.values if mrules is not None and mrules.HasField("values") else None, defs
            )
            schema: dict[str, Any] = {
                "type": "object",
                "propertyNames": self._map_key_schema(
                    key_fld, mrules.keys if mrules is not None and mrules.HasField("keys") else None
                ),
                "additionalProperties": value,
            }
            if mrules is not None:
                if mrules.HasField("min_pairs"):
                    schema["minProperties"] = mrules.min_pairs
                if mrules.HasField("max_pairs"):
                    schema["maxProperties"] = mrules.max_pairs
            if is_required:
                schema["minProperties"] = max(1, schema.get("minProperties", 0))
            return self._annotate_rules(schema, rules)
        if fld.label == T.LABEL_REPEATED:
            rrules = rules.repeated if rules is not None and rules.HasField("repeated") else None
            item = self._value_schema(
                fld, rrules.items if rrules is not None and rrules.HasField("items") else None, defs
            )
            schema = {"type": "array", "items": item}
            if rrules is not None:
                if rrules.HasField("min_items"):
                    schema["minItems"] = rrules.min_items
                if rrules.HasField("max_items"):
                    schema["maxItems"] = rrules.max_items
                if rrules.unique:
                    schema["uniqueItems"] = True
            if is_required:
                schema["minItems"] = max(1, schema.get("minItems", 0))
            return self._annotate_rules(schema, rules)
        schema = self._value_schema(fld, rules, defs)
        # proto3 JSON omits default values, so a `required` scalar with implicit presence must be
        # present AND non-default. Fields with explicit presence (optional, messages) only need to
        # be present.
        has_presence = (
            fld.proto3_optional or fld.type in (T.TYPE_MESSAGE, T.TYPE_GROUP) or fld.HasField("oneof_index")
        )
        if is_required and not has_presence:
            schema = _non_default(schema, fld, self)
        return self._annotate_rules(schema, rules)

    def _annotate_rules(self, schema: dict[str, Any], rules: Any) -> dict[str, Any]:
        if rules is None:
            return schema
        cel = _cel_list(rules.cel, rules.cel_expression)
        if cel:
            schema = {**schema, "x-ansim-cel": cel}
        return schema

    def _map_entry(self, fld: Any) -> _Message | None:
        if fld.type != T.TYPE_MESSAGE or fld.label != T.LABEL_REPEATED:
            return None
        entry = self._index.messages.get(fld.type_name.lstrip("."))
        if entry is not None and entry.proto.options.map_entry:
            return entry
        return None

    def _map_key_schema(self, key_fld: Any, rules: Any) -> dict[str, Any]:
        if key_fld.type == T.TYPE_BOOL:
            return {"enum": ["false", "true"]}
        if key_fld.type in INT32_TYPES | INT64_TYPES:
            return {"pattern": r"^-?(0|[1-9][0-9]*)$"}
        if key_fld.type in UINT32_TYPES | UINT64_TYPES:
            return {"pattern": r"^(0|[1-9][0-9]*)$"}
        schema: dict[str, Any] = {"type": "string"}
        if rules is not None and rules.HasField("string"):
            schema.update(_string_rules(rules.string))
        return schema

    def _value_schema(self, fld: Any, rules: Any, defs: dict[str, Any]) -> dict[str, Any]:
        """Schema of one value of the field (an item for repeated fields)."""
        ftype = fld.type
        if ftype in (T.TYPE_MESSAGE, T.TYPE_GROUP):
            return self._message_ref(fld.type_name.lstrip("."), rules, defs)
        if ftype == T.TYPE_ENUM:
            return self._enum_schema(fld.type_name.lstrip("."), rules.enum if _has(rules, "enum") else None)
        return _scalar_schema(ftype, rules)

    def _enum_schema(self, full_name: str, rules: Any) -> dict[str, Any]:
        if full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        enum = self._index.enums[full_name]
        values = [(v.name, v.number) for v in enum.value]
        if rules is not None:
            if rules.HasField("const"):
                values = [(n, num) for n, num in values if num == rules.const]
            if len(rules.__getattribute__("in")):
                allowed = set(rules.__getattribute__("in"))
                values = [(n, num) for n, num in values if num in allowed]
            if len(rules.not_in):
                forbidden = set(rules.not_in)
                values = [(n, num) for n, num in values if num not in forbidden]
        return {"type": "string", "enum": [n for n, _ in values]}

    def _message_ref(self, full_name: str, rules: Any, defs: dict[str, Any]) -> dict[str, Any]:
        wkt = self._well_known(full_name, rules, defs)
        if wkt is not None:
            return wkt
        if full_name.startswith(ANSIM_PACKAGE_PREFIX):
            return {"$ref": schema_file_name(full_name)}
        # A non-ansim message (e.g. google.rpc.Status, google.type.LatLng): described inline in
        # $defs of the referencing schema. Its comments are not ours and are not copied.
        if full_name not in defs:
            defs[full_name] = {}  # placeholder: breaks recursion
            inner = self._object_schema(self._index.messages[full_name], defs, comments=False)
            inner["title"] = full_name
            defs[full_name] = inner
        return {"$ref": f"#/$defs/{full_name}"}

    def _well_known(self, full_name: str, rules: Any, defs: dict[str, Any]) -> dict[str, Any] | None:
        if full_name == "google.protobuf.Timestamp":
            schema: dict[str, Any] = {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}
            if _has(rules, "timestamp"):
                schema["x-ansim-timestamp-rules"] = _rules_dict(rules.timestamp)
            return schema
        if full_name == "google.protobuf.Duration":
            schema = {"type": "string", "pattern": DURATION_PATTERN}
            if _has(rules, "duration"):
                drules = rules.duration
                exact = _duration_range_pattern(drules)
                if exact is not None:
                    schema["pattern"] = exact
                    return schema
                lower = None
                if drules.HasField("gte"):
                    lower = (drules.gte.seconds, drules.gte.nanos)
                if drules.HasField("gt"):
                    lower = (drules.gt.seconds, drules.gt.nanos)
                if lower is not None and lower >= (0, 0):
                    schema["pattern"] = NONNEGATIVE_DURATION_PATTERN
                schema["x-ansim-duration-rules"] = _rules_dict(drules)
            return schema
        if full_name == "google.protobuf.FieldMask":
            return {"type": "string", "pattern": FIELD_MASK_PATTERN}
        if full_name in WRAPPERS:
            return _scalar_schema(WRAPPERS[full_name], None)
        if full_name == "google.protobuf.Struct":
            return {"type": "object"}
        if full_name == "google.protobuf.ListValue":
            return {"type": "array"}
        if full_name == "google.protobuf.Value":
            return {}
        if full_name == "google.protobuf.Empty":
            return {"type": "object", "additionalProperties": False}
        if full_name == "google.protobuf.Any":
            schema = {
                "type": "object",
                "properties": {"@type": {"type": "string", "minLength": 1}},
                "required": ["@type"],
            }
            if _has(rules, "any"):
                schema["x-ansim-any-rules"] = _rules_dict(rules.any)
            return schema
        return None


# ---------------------------------------------------------------------- helpers


def _has(rules: Any, kind: str) -> bool:
    return rules is not None and rules.HasField(kind)


def _rules_dict(rules: Any) -> dict[str, Any]:
    return MessageToDict(rules, preserving_proto_field_name=False)


def _cel_list(cel: Iterable[Any], expressions: Iterable[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for rule in cel:
        item = {"expression": rule.expression}
        if rule.id:
            item["id"] = rule.id
        if rule.message:
            item["message"] = rule.message
        out.append(item)
    out.extend({"expression": e} for e in expressions)
    return out


def _at_most_one(members: list[str]) -> list[dict[str, Any]]:
    return [{"not": {"required": [a, b]}} for i, a in enumerate(members) for b in members[i + 1 :]]


def _number(value: float | int) -> float | int:
    """A JSON-friendly number: integral floats are written as integers for stable, readable output."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _scalar_schema(ftype: int, rules: Any) -> dict[str, Any]:
    if ftype in FLOAT_TYPES:
        nrules = None
        if rules is not None:
            fkind = "double" if ftype == T.TYPE_DOUBLE else "float"
            nrules = getattr(rules, fkind) if rules.HasField(fkind) else None
        number: dict[str, Any] = {"type": "number"}
        has_lower = has_upper = finite = False
        if nrules is not None:
            number.update(_numeric_rules(nrules))
            has_lower = nrules.HasField("gt") or nrules.HasField("gte")
            has_upper = nrules.HasField("lt") or nrules.HasField("lte")
            finite = nrules.finite or nrules.HasField("const") or len(getattr(nrules, "in")) > 0
        specials = []
        if not (finite or has_lower or has_upper):
            specials.append("NaN")
        if not (finite or has_upper):
            specials.append("Infinity")
        if not (finite or has_lower):
            specials.append("-Infinity")
        if not specials:
            return number
        if nrules is None:
            return {"anyOf": [{"type": "number"}, {"type": "string", "enum": specials}]}
        return {"anyOf": [number, {"type": "string", "enum": specials}]}
    if ftype in INT32_TYPES or ftype in UINT32_TYPES:
        lo, hi = INT_RANGES["int32" if ftype in INT32_TYPES else "uint32"]
        schema: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
        kind = _kind_of(rules)
        if kind is not None:
            schema.update(_numeric_rules(getattr(rules, kind)))
        return _tighten(schema)
    if ftype in INT64_TYPES or ftype in UINT64_TYPES:
        schema = {"type": "string", "pattern": INT64_PATTERN if ftype in INT64_TYPES else UINT64_PATTERN}
        kind = _kind_of(rules)
        if kind is not None:
            nrules = getattr(rules, kind)
            # Ranges on decimal strings are not expressible; keep them for readers (protovalidate
            # enforces them), but carry const/in as exact strings.
            if nrules.HasField("const"):
                schema["const"] = str(nrules.const)
            if len(getattr(nrules, "in")):
                schema["enum"] = [str(v) for v in getattr(nrules, "in")]
            if len(nrules.not_in):
                schema["not"] = {"enum": [str(v) for v in nrules.not_in]}
            # Ranges become a pattern over the decimal string (exact: see _int_range_regex).
            pattern = _int64_range_pattern(nrules, signed=ftype in INT64_TYPES)
            if pattern is not None:
                schema["pattern"] = pattern
        return schema
    if ftype == T.TYPE_BOOL:
        schema = {"type": "boolean"}
        if _has(rules, "bool") and rules.bool.HasField("const"):
            schema["const"] = rules.bool.const
        return schema
    if ftype == T.TYPE_STRING:
        schema = {"type": "string"}
        if _has(rules, "string"):
            schema.update(_string_rules(rules.string))
        return schema
    if ftype == T.TYPE_BYTES:
        schema = {"type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN}
        if _has(rules, "bytes"):
            brules = rules.bytes
            low = high = None
            if brules.HasField("len"):
                low = high = brules.len
            if brules.HasField("min_len"):
                low = brules.min_len
            if brules.HasField("max_len"):
                high = brules.max_len
            if low is not None or high is not None:
                # The number of bytes is fixed by the number of base64 characters before the
                # padding, so a length range is an exact pattern over the text.
                schema["pattern"] = _base64_length_pattern(low or 0, high)
            unexpressed = {
                k: v for k, v in _rules_dict(brules).items() if k not in ("len", "minLen", "maxLen")
            }
            if unexpressed:
                schema["x-ansim-bytes-rules"] = unexpressed
        return schema
    raise ValueError(f"unsupported field type {ftype}")


def _kind_of(rules: Any) -> str | None:
    if rules is None:
        return None
    which = rules.WhichOneof("type")
    return str(which) if which else None


def _tighten(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop the type-range bounds that a rule bound makes redundant."""
    if "exclusiveMinimum" in schema and schema["exclusiveMinimum"] >= schema["minimum"]:
        del schema["minimum"]
    if "exclusiveMaximum" in schema and schema["exclusiveMaximum"] <= schema["maximum"]:
        del schema["maximum"]
    return schema


def _numeric_rules(nrules: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if nrules.HasField("const"):
        out["const"] = _number(nrules.const)
    if len(getattr(nrules, "in")):
        out["enum"] = [_number(v) for v in getattr(nrules, "in")]
    if len(nrules.not_in):
        out["not"] = {"enum": [_number(v) for v in nrules.not_in]}
    lower: dict[str, Any] = {}
    upper: dict[str, Any] = {}
    if nrules.HasField("gt"):
        lower["exclusiveMinimum"] = _number(nrules.gt)
    if nrules.HasField("gte"):
        lower["minimum"] = _number(nrules.gte)
    if nrules.HasField("lt"):
        upper["exclusiveMaximum"] = _number(nrules.lt)
    if nrules.HasField("lte"):
        upper["maximum"] = _number(nrules.lte)
    low = next(iter(lower.values()), None)
    high = next(iter(upper.values()), None)
    if low is not None and high is not None and low > high:
        # protovalidate: a lower bound above the upper bound means "outside the range".
        out["anyOf"] = [upper, lower]
    else:
        out.update(lower)
        out.update(upper)
    return out


def _string_rules(srules: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    patterns: list[str] = []
    if srules.HasField("const"):
        out["const"] = srules.const
    if srules.HasField("len"):
        out["minLength"] = out["maxLength"] = srules.len
    if srules.HasField("min_len"):
        out["minLength"] = srules.min_len
    if srules.HasField("max_len"):
        out["maxLength"] = srules.max_len
    if srules.HasField("pattern"):
        patterns.append(srules.pattern)
    if srules.HasField("prefix"):
        patterns.append("^" + _regex_escape(srules.prefix))
    if srules.HasField("suffix"):
        patterns.append(_regex_escape(srules.suffix) + "$")
    if srules.HasField("contains"):
        patterns.append(_regex_escape(srules.contains))
    if srules.HasField("not_contains"):
        out["not"] = {"pattern": _regex_escape(srules.not_contains)}
    if len(getattr(srules, "in")):
        out["enum"] = list(getattr(srules, "in"))
    if len(srules.not_in):
        forbidden = {"enum": list(srules.not_in)}
        out["not"] = {"anyOf": [out["not"], forbidden]} if "not" in out else forbidden
    well_known = srules.WhichOneof("well_known")
    if well_known in STRING_FORMATS:
        out["format"] = STRING_FORMATS[well_known]
    elif well_known == "uuid" and srules.uuid:
        out["format"] = "uuid"
        patterns.append(UUID_PATTERN)
    elif well_known == "tuuid" and srules.tuuid:
        patterns.append(TUUID_PATTERN)
    elif well_known == "ulid" and srules.ulid:
        patterns.append(ULID_PATTERN)
    elif well_known is not None:
        out["x-ansim-string-format"] = well_known
    if srules.HasField("len_bytes") or srules.HasField("min_bytes") or srules.HasField("max_bytes"):
        out["x-ansim-utf8-bytes"] = {
            k: getattr(srules, k) for k in ("len_bytes", "min_bytes", "max_bytes") if srules.HasField(k)
        }
    if len(patterns) == 1:
        out["pattern"] = patterns[0]
    elif patterns:
        out["allOf"] = [{"pattern": p} for p in patterns]
    return out


def _regex_escape(text: str) -> str:
    return re.sub(r"([.^$*+?()\[\]{}|\\/-])", r"\\\1", text)


# ------------------------------------------------------------ absent = default = rejected

# buf.validate.Ignore values.
IGNORE_UNSPECIFIED = 0
IGNORE_ALWAYS = 3
NUMERIC_KINDS = {
    "float", "double", "int32", "int64", "uint32", "uint64",
    "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64",
}  # fmt: skip
#: Well-known string formats under which protovalidate accepts the empty string.
EMPTY_OK_FORMATS = {"uri_ref"}
KNOWN_REGEX_HTTP_HEADER_NAME = 1


def _must_be_present(fld: Any, rules: Any, gen: SchemaGenerator) -> bool:
    """True if the field must appear in the JSON (it belongs in the schema's ``required`` list).

    Either the rules say ``required``, or the field has implicit presence and its rules reject the
    field's default value: proto3 JSON omits default values, so an absent field *is* the default
    (an empty string, 0, the zero enum value, an empty list or map) and protovalidate rejects it.
    """
    if rules is None:
        return False
    if rules.required:
        return bool(rules.ignore != IGNORE_ALWAYS)
    if rules.ignore != IGNORE_UNSPECIFIED:
        return False  # IGNORE_IF_ZERO_VALUE / IGNORE_ALWAYS: an absent field is never checked
    if gen._map_entry(fld) is not None:
        return bool(rules.HasField("map") and rules.map.min_pairs >= 1)
    if fld.label == T.LABEL_REPEATED:
        return bool(rules.HasField("repeated") and rules.repeated.min_items >= 1)
    if fld.proto3_optional or fld.type in (T.TYPE_MESSAGE, T.TYPE_GROUP) or fld.HasField("oneof_index"):
        return False  # explicit presence: rules apply only to a value that is set
    return _rejects_default(rules)


def _rejects_default(rules: Any) -> bool:
    """True if the scalar rules reject the proto3 default value of their type."""
    kind = _kind_of(rules)
    if kind is None:
        return False
    krules = getattr(rules, kind)
    if kind == "string":
        return _rejects_empty(krules, "")
    if kind == "bytes":
        return _rejects_empty(krules, b"")
    if kind == "bool":
        return krules.HasField("const") and krules.const is True
    if kind == "enum" or kind in NUMERIC_KINDS:
        return _rejects_zero(krules)
    return False


def _rejects_empty(krules: Any, empty: str | bytes) -> bool:
    if krules.HasField("const"):
        return bool(krules.const != empty)
    for key in ("len", "min_len", "len_bytes", "min_bytes"):
        if key in krules.DESCRIPTOR.fields_by_name and krules.HasField(key) and getattr(krules, key) >= 1:
            return True
    for key in ("prefix", "suffix", "contains"):
        if krules.HasField(key) and getattr(krules, key):
            return True
    allowed = list(getattr(krules, "in"))
    if (allowed and empty not in allowed) or empty in list(krules.not_in):
        return True
    if krules.HasField("pattern"):
        try:
            if re.search(krules.pattern, "") is None:
                return True
        except re.error:  # RE2 syntax Python does not know: not decided here
            pass
    well_known = krules.WhichOneof("well_known")
    if well_known == "well_known_regex":
        return bool(krules.well_known_regex == KNOWN_REGEX_HTTP_HEADER_NAME)
    return well_known is not None and well_known not in EMPTY_OK_FORMATS and bool(getattr(krules, well_known))


def _rejects_zero(krules: Any) -> bool:
    """True if numeric (or enum) rules reject 0, with protovalidate's reading of the bounds."""
    if krules.HasField("const"):
        return bool(krules.const != 0)
    allowed = list(getattr(krules, "in"))
    if (allowed and 0 not in allowed) or 0 in list(krules.not_in):
        return True
    fields = krules.DESCRIPTOR.fields_by_name
    lower = next((k for k in ("gt", "gte") if k in fields and krules.HasField(k)), None)
    upper = next((k for k in ("lt", "lte") if k in fields and krules.HasField(k)), None)

    def above(x: float) -> bool:
        return lower is None or (x > krules.gt if lower == "gt" else x >= krules.gte)

    def below(x: float) -> bool:
        return upper is None or (x < krules.lt if upper == "lt" else x <= krules.lte)

    if (
        lower is not None
        and upper is not None
        and _exclusive_range(getattr(krules, lower), lower, getattr(krules, upper), upper)
    ):
        return not (above(0) or below(0))
    return not (above(0) and below(0))


def _exclusive_range(low: Any, low_kind: str, high: Any, high_kind: str) -> bool:
    """protovalidate: a lower bound not below the upper one means "outside the range"."""
    if low_kind == "gte" and high_kind == "lte":
        return bool(high < low)
    return bool(high <= low) if (low_kind, high_kind) == ("gt", "lt") else bool(high < low)


# ------------------------------------------------------------ ranges as patterns


def _digits(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"[{lo}-{hi}]"


def _any_digits(count: int) -> str:
    if count == 0:
        return ""
    return "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _same_length_regex(a: str, b: str) -> list[str]:
    """Alternatives matching the decimal numbers from ``a`` to ``b`` (same length, a <= b)."""
    if not a:
        return [""]
    if a[0] == b[0]:
        return [a[0] + rest for rest in _same_length_regex(a[1:], b[1:])]
    tail = len(a) - 1
    out: list[str] = []
    first, last = int(a[0]), int(b[0])
    if a[1:] != "0" * tail:
        out += [a[0] + rest for rest in _same_length_regex(a[1:], "9" * tail)]
        first += 1
    low_tail_of_b = b[1:] != "9" * tail
    if low_tail_of_b:
        last -= 1
    if first <= last:
        out.append(_digits(first, last) + _any_digits(tail))
    if low_tail_of_b:
        out += [b[0] + rest for rest in _same_length_regex("0" * tail, b[1:])]
    return out


def _int_range_regex(lo: int, hi: int | None, max_digits: int) -> str:
    """Alternation matching the canonical decimals (no sign, no leading zeros) in [lo, hi].

    ``hi`` None means "up to ``max_digits`` digits" (the parser rejects what overflows the type).
    """
    low = str(lo)
    alts: list[str] = []
    if hi is None:
        if len(low) == 1 and lo <= 1:
            return ("0|" if lo == 0 else "") + f"[1-9][0-9]{{0,{max_digits - 1}}}"
        alts += _same_length_regex(low, "9" * len(low))
        if len(low) < max_digits:
            alts.append(f"[1-9][0-9]{{{len(low)},{max_digits - 1}}}")
        return "|".join(alts)
    high = str(hi)
    for n in range(len(low), len(high) + 1):
        a = low if n == len(low) else "1" + "0" * (n - 1)
        b = high if n == len(high) else "9" * n
        alts += _same_length_regex(a, b)
    return "|".join(alts)


def _int64_range_pattern(nrules: Any, *, signed: bool) -> str | None:
    """Pattern of the decimal strings of a 64-bit field that satisfy its gt/gte/lt/lte rules."""
    fields = nrules.DESCRIPTOR.fields_by_name
    lower = next((k for k in ("gt", "gte") if k in fields and nrules.HasField(k)), None)
    upper = next((k for k in ("lt", "lte") if k in fields and nrules.HasField(k)), None)
    if lower is None and upper is None:
        return None
    type_min, type_max = (-(2**63), 2**63 - 1) if signed else (0, 2**64 - 1)
    lo = type_min if lower is None else (nrules.gte if lower == "gte" else nrules.gt + 1)
    hi = type_max if upper is None else (nrules.lte if upper == "lte" else nrules.lt - 1)
    if (
        lower is not None
        and upper is not None
        and _exclusive_range(getattr(nrules, lower), lower, getattr(nrules, upper), upper)
    ):
        intervals = [(lo, type_max), (type_min, hi)]
    else:
        intervals = [(lo, hi)]
    max_digits = 19 if signed else 20
    alts: list[str] = []
    for a, b in intervals:
        if a > b:
            continue
        if b >= 0:
            alts.append(_int_range_regex(max(a, 0), None if b == type_max else b, max_digits))
        if a < 0:
            magnitude = _int_range_regex(max(-b, 1), None if a == type_min else -a, max_digits)
            alts.append(f"-({magnitude})")
    return f"^({'|'.join(alts)})$" if alts else "^(?!)$"


def _duration_range_pattern(drules: Any) -> str | None:
    """An exact pattern for Duration rules made only of whole-second, non-negative bounds.

    ``None`` when the rules hold anything else (nanos in a bound, no lower bound, const, in…); those
    stay listed under ``x-ansim-duration-rules`` for protovalidate to enforce.
    """
    present = {fd.name for fd, _ in drules.ListFields()}
    if not present or not present <= {"gt", "gte", "lt", "lte"}:
        return None
    lower = next((k for k in ("gt", "gte") if k in present), None)
    upper = next((k for k in ("lt", "lte") if k in present), None)
    if lower is None:
        return None
    bounds = {k: getattr(drules, k) for k in present}
    if any(b.nanos != 0 or b.seconds < 0 for b in bounds.values()):
        return None
    low = bounds[lower].seconds
    high = bounds[upper].seconds if upper is not None else None
    if upper is not None and _exclusive_range(low, lower, high, upper):
        return None
    frac = r"(\.[0-9]{1,9})?"
    zero_frac = r"(\.0{1,9})?"
    nonzero_frac = r"\.(?=[0-9]{0,8}[1-9])[0-9]{1,9}"
    whole_low = low if lower == "gte" else low + 1
    whole_high = None if high is None else high - 1  # below the upper bound, any fraction
    alts: list[str] = []
    if whole_high is None or whole_low <= whole_high:
        alts.append(f"({_int_range_regex(whole_low, whole_high, 12)}){frac}")
    if lower == "gt" and (high is None or low < high):
        alts.append(f"{low}{nonzero_frac}")  # (low, low + 1)
    if upper == "lte" and high is not None and (high > low or (high == low and lower == "gte")):
        alts.append(f"{high}{zero_frac}")  # exactly the upper bound
    return f"^({'|'.join(alts)})s$" if alts else "^(?!)$"


def _base64_length_pattern(low: int, high: int | None) -> str:
    """Base64 text (standard or URL alphabet, padding optional) of ``low``..``high`` bytes.

    The byte count is fixed by the number of characters before the padding: 4 per 3 bytes, plus 2
    for one trailing byte or 3 for two.
    """

    def chars(n: int) -> int:
        return 4 * (n // 3) + (n % 3 + 1 if n % 3 else 0)

    alphabet = "[A-Za-z0-9+/_-]"
    if high is None:
        count = f"{{{chars(low)},}}"
    elif chars(low) == chars(high):
        count = f"{{{chars(low)}}}"
    else:
        count = f"{{{chars(low)},{chars(high)}}}"
    shape = f"({alphabet}{{4}})*({alphabet}{{2}}(==)?|{alphabet}{{3}}=?)?"
    return f"^(?={alphabet}{count}={{0,2}}$){shape}$"


def _non_default(schema: dict[str, Any], fld: Any, gen: SchemaGenerator) -> dict[str, Any]:
    """Add "not the proto3 default value" to the schema of a required implicit-presence scalar."""
    ftype = fld.type
    if ftype == T.TYPE_STRING or ftype == T.TYPE_BYTES:
        return {**schema, "minLength": max(1, schema.get("minLength", 0))}
    if ftype == T.TYPE_BOOL:
        return {**schema, "const": True}
    if ftype == T.TYPE_ENUM:
        enum = gen._index.enums[fld.type_name.lstrip(".")]
        zero = next((v.name for v in enum.value if v.number == 0), None)
        return {**schema, "enum": [n for n in schema.get("enum", []) if n != zero]}
    if ftype in INT64_TYPES or ftype in UINT64_TYPES:
        return (
            {**schema, "not": {"pattern": r"^-?0+$"}}
            if "not" not in schema
            else {
                **schema,
                "allOf": [{"not": {"pattern": r"^-?0+$"}}],
            }
        )
    # int32/uint32/float/double
    zero_check = {"not": {"const": 0}}
    return {"allOf": [schema, zero_check]}


def dump(schema: dict[str, Any]) -> str:
    """Stable JSON text: sorted keys, 2-space indent, UTF-8 kept readable, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate_schemas(image: bytes) -> dict[str, str]:
    """Schema file name → text for every ansim message in the FileDescriptorSet ``image``."""
    return SchemaGenerator(image).generate()


def main() -> int:
    from tools.generate import main as generate_main

    return generate_main([])


if __name__ == "__main__":
    raise SystemExit(main())
