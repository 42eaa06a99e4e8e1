"""Field-by-field comparison of served ``ansim.v1`` descriptors with the standard's (GEN-005).

Compared by fully-qualified name, not by file name (a vendor may compile the protos under other
paths): every standard service the target serves, and every message and enum reachable from it, must
exist with the same field numbers, names, types, type names, labels, proto3 ``optional``, oneof
membership and (effective) JSON names; the same enum value numbers; the same rpcs with the same
request and response types and streaming kinds. The target must not define ``ansim.v1`` symbols the
standard does not. Options (including buf.validate rules) are not compared: they do not change the
wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2 as d

PACKAGE = "ansim.v1"
_TYPE = {v: k.removeprefix("TYPE_").lower() for k, v in d.FieldDescriptorProto.Type.items()}
_LABEL = {v: k.removeprefix("LABEL_").lower() for k, v in d.FieldDescriptorProto.Label.items()}


def default_json_name(name: str) -> str:
    """protoc's default JSON name: drop underscores, upper-case the letter after each."""
    out: list[str] = []
    upper = False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class Symbols:
    """The symbols of a set of files, by full name (without the leading dot)."""

    messages: dict[str, d.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, d.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, d.ServiceDescriptorProto] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Iterable[d.FileDescriptorProto]) -> Symbols:
        out = cls()
        for f in files:
            prefix = f.package
            for e in f.enum_type:
                out.enums[f"{prefix}.{e.name}"] = e
            for m in f.message_type:
                out._add_message(f"{prefix}.{m.name}", m)
            for s in f.service:
                out.services[f"{prefix}.{s.name}"] = s
        return out

    def _add_message(self, full: str, message: d.DescriptorProto) -> None:
        self.messages[full] = message
        for e in message.enum_type:
            self.enums[f"{full}.{e.name}"] = e
        for nested in message.nested_type:
            self._add_message(f"{full}.{nested.name}", nested)

    def in_package(self) -> set[str]:
        names = set(self.messages) | set(self.enums) | set(self.services)
        return {n for n in names if n.startswith(PACKAGE + ".")}


def _field_shape(message: d.DescriptorProto, f: d.FieldDescriptorProto) -> dict[str, str]:
    oneof = ""
    if f.HasField("oneof_index") and not f.proto3_optional:
        oneof = message.oneof_decl[f.oneof_index].name
    return {
        "name": f.name,
        "type": _TYPE.get(f.type, str(f.type)),
        "type_name": f.type_name.lstrip("."),
        "label": _LABEL.get(f.label, str(f.label)),
        "json_name": f.json_name or default_json_name(f.name),
        "proto3_optional": str(f.proto3_optional).lower(),
        "oneof": oneof,
    }


def _compare_message(name: str, want: d.DescriptorProto, got: d.DescriptorProto) -> list[str]:
    out: list[str] = []
    want_fields = {f.number: f for f in want.field}
    got_fields = {f.number: f for f in got.field}
    for number, wf in sorted(want_fields.items()):
        gf = got_fields.get(number)
        if gf is None:
            out.append(f"{name}: field {number} ({wf.name}) is missing")
            continue
        ws, gs = _field_shape(want, wf), _field_shape(got, gf)
        for key in ws:
            if ws[key] != gs[key]:
                out.append(
                    f"{name}.{wf.name} (field {number}): {key} is {gs[key]!r}, the standard says {ws[key]!r}"
                )
    for number, gf in sorted(got_fields.items()):
        if number not in want_fields:
            out.append(f"{name}: field {number} ({gf.name}) is not in the standard")
    return out


def _compare_enum(name: str, want: d.EnumDescriptorProto, got: d.EnumDescriptorProto) -> list[str]:
    out: list[str] = []
    want_values = {v.name: v.number for v in want.value}
    got_values = {v.name: v.number for v in got.value}
    for value, number in want_values.items():
        if value not in got_values:
            out.append(f"{name}: value {value} = {number} is missing")
        elif got_values[value] != number:
            out.append(f"{name}.{value}: number is {got_values[value]}, the standard says {number}")
    out += [f"{name}: value {v} is not in the standard" for v in got_values if v not in want_values]
    return out


def _compare_service(name: str, want: d.ServiceDescriptorProto, got: d.ServiceDescriptorProto) -> list[str]:
    out: list[str] = []
    got_methods = {m.name: m for m in got.method}
    for wm in want.method:
        gm = got_methods.get(wm.name)
        if gm is None:
            out.append(f"{name}: rpc {wm.name} is missing")
            continue
        pairs = {
            "request type": (wm.input_type.lstrip("."), gm.input_type.lstrip(".")),
            "response type": (wm.output_type.lstrip("."), gm.output_type.lstrip(".")),
            "client streaming": (wm.client_streaming, gm.client_streaming),
            "server streaming": (wm.server_streaming, gm.server_streaming),
        }
        for what, (w, g) in pairs.items():
            if w != g:
                out.append(f"{name}/{wm.name}: {what} is {g!r}, the standard says {w!r}")
    names = {m.name for m in want.method}
    out += [f"{name}: rpc {m} is not in the standard" for m in got_methods if m not in names]
    return out


def _reachable(standard: Symbols, services: Iterable[str]) -> tuple[set[str], set[str]]:
    """Messages and enums of the package reachable from ``services``."""
    messages: set[str] = set()
    enums: set[str] = set()
    todo = [
        t.lstrip(".")
        for s in services
        if s in standard.services
        for m in standard.services[s].method
        for t in (m.input_type, m.output_type)
    ]
    while todo:
        name = todo.pop()
        if name in messages or name not in standard.messages:
            if name in standard.enums:
                enums.add(name)
            continue
        messages.add(name)
        for f in standard.messages[name].field:
            if f.type_name:
                todo.append(f.type_name.lstrip("."))
    return (
        {m for m in messages if m.startswith(PACKAGE + ".")},
        {e for e in enums if e.startswith(PACKAGE + ".")},
    )


def compare(
    standard_files: Iterable[d.FileDescriptorProto],
    served_files: Iterable[d.FileDescriptorProto],
    services: Iterable[str],
) -> list[str]:
    """Every difference between what the target serves and the standard, for the target's
    ``services`` (the standard services it claims); [] when they match."""
    services = sorted(services)
    want, got = Symbols.of(standard_files), Symbols.of(served_files)
    out: list[str] = []
    for name in services:
        if name not in got.services:
            out.append(f"{name}: the target's descriptors do not define this service")
        else:
            out += _compare_service(name, want.services[name], got.services[name])
    messages, enums = _reachable(want, services)
    # Also compare every other standard symbol the target happens to serve.
    messages |= {m for m in got.messages if m in want.messages}
    enums |= {e for e in got.enums if e in want.enums}
    for name in sorted(messages):
        if name not in got.messages:
            out.append(f"{name}: message is missing from the target's descriptors")
        else:
            out += _compare_message(name, want.messages[name], got.messages[name])
    for name in sorted(enums):
        if name not in got.enums:
            out.append(f"{name}: enum is missing from the target's descriptors")
        else:
            out += _compare_enum(name, want.enums[name], got.enums[name])
    extra = sorted(got.in_package() - want.in_package())
    out += [f"{name}: defined in package {PACKAGE} by the target but not by the standard" for name in extra]
    return out
