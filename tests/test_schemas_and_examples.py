"""Every message has a JSON Schema; examples under spec/examples agree with the schemas and the protos.

- spec/examples/valid/<full.Message.Name>/*.json must pass the schema AND proto3 JSON parsing +
  protovalidate;
- spec/examples/invalid/<full.Message.Name>/*.json must be rejected by parsing or protovalidate, AND
  by the schema unless every rule the example breaks is one the schema lists as not expressible in
  JSON Schema (a CEL rule under ``x-ansim-cel``, or another ``x-ansim-*`` annotation on that field or
  message). So an example that breaks an expressible rule the schema misses still fails;
- every rpc request, response and stream event has at least one valid example.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from ansim_sdk import jsonvalidation
from tools.jsonschema_gen import SchemaGenerator, schema_file_name
from tools.protoc import REPO_ROOT, ToolError, build_image

SPEC = REPO_ROOT / "spec"
EXAMPLES = SPEC / "examples"


def _generator() -> tuple[SchemaGenerator | None, str]:
    try:
        with tempfile.TemporaryDirectory(prefix="ansim-test-") as tmp:
            image = build_image(REPO_ROOT / "proto", Path(tmp), Path(tmp) / "image.binpb").read_bytes()
    except ToolError as exc:
        # Reported by test_protos_compile; a collection error would stop the whole session.
        return None, str(exc)
    return SchemaGenerator(image), ""


_GEN, _COMPILE_ERROR = _generator()
MESSAGES = _GEN.ansim_messages() if _GEN else []
RPC_MESSAGES = _GEN.rpc_messages() if _GEN else []


def test_protos_compile() -> None:
    assert _GEN is not None, f"proto/ does not compile:\n{_COMPILE_ERROR}"


def _examples(kind: str) -> list[Path]:
    return sorted((EXAMPLES / kind).glob("*/*.json"))


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("message", MESSAGES)
def test_message_has_schema(message: str) -> None:
    assert (SPEC / "schemas" / schema_file_name(message)).is_file()


@pytest.mark.parametrize("message", RPC_MESSAGES)
def test_rpc_message_has_valid_example(message: str) -> None:
    found = sorted((EXAMPLES / "valid" / message).glob("*.json"))
    assert found, f"no valid example in spec/examples/valid/{message}/ for an rpc request/response/event"


@pytest.mark.parametrize("kind", ["valid", "invalid"])
def test_example_dirs_name_messages(kind: str) -> None:
    base = EXAMPLES / kind
    dirs = sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if _GEN is None:
        pytest.skip("proto/ does not compile (see test_protos_compile)")
    unknown = [d for d in dirs if d not in MESSAGES]
    assert not unknown, f"spec/examples/{kind}/ has directories that are not ansim messages: {unknown}"


@pytest.mark.parametrize("path", _examples("valid"), ids=_id)
def test_valid_example(path: Path) -> None:
    message = path.parent.name
    text = path.read_text(encoding="utf-8")

    schema = jsonvalidation.schema_problems(message, json.loads(text))
    assert not schema, f"{_id(path)} breaks its schema: {schema}"
    proto = jsonvalidation.proto_problems(message, text)
    assert not proto, f"{_id(path)} fails proto3 JSON parsing or protovalidate: {proto}"


@pytest.mark.parametrize("path", _examples("invalid"), ids=_id)
def test_invalid_example(path: Path) -> None:
    message = path.parent.name
    text = path.read_text(encoding="utf-8")
    assert jsonvalidation.proto_problems(message, text), (
        f"{_id(path)} passes proto3 JSON parsing and protovalidate"
    )
    missed = jsonvalidation.schema_misses(message, text)
    assert not missed, (
        f"{_id(path)} passes its JSON Schema but breaks rules the schema does not list as "
        f"inexpressible (x-ansim-cel / x-ansim-*): {missed}"
    )


def test_declared_unexpressed_is_precise() -> None:
    """The exemption covers a CEL rule only where the schema lists its id, never an expressible rule."""
    cel = jsonvalidation.Problem("$", "cel EMG-011", "EMG-011", "", "protovalidate")
    assert jsonvalidation.declared_unexpressed("ansim.v1.Emergency", cel)
    assert not jsonvalidation.declared_unexpressed("ansim.v1.Location", cel)
    pattern = jsonvalidation.Problem("$.name", "string.pattern", "JSON-001", "", "protovalidate")
    assert not jsonvalidation.declared_unexpressed("ansim.v1.Emergency", pattern)
    parse = jsonvalidation.Problem("$", "proto3 JSON", "JSON-001", "", "json")
    assert not jsonvalidation.declared_unexpressed("ansim.v1.Emergency", parse)
    assert jsonvalidation.parse_json_path('$.a[2]["k-1"].b') == ["a", 2, "k-1", "b"]
