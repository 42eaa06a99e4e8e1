"""The authorization table covers every rpc, matches the spec's tables, and denies by default."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from ansim.v1 import common_pb2

from reference_server import policy

REPO = Path(__file__).resolve().parents[1]
GENERATED = REPO / "gen" / "python" / "ansim" / "v1"
ROLE_COLUMNS = re.compile(r"^\| rpc \| (APP_USER .*) \|$")


def generated_methods() -> set[str]:
    methods: set[str] = set()
    for path in sorted(GENERATED.glob("*_pb2.py")):
        module = importlib.import_module(f"ansim.v1.{path.stem}")
        for service in module.DESCRIPTOR.services_by_name.values():
            methods.update(f"/{service.full_name}/{m.name}" for m in service.methods)
    return methods


def spec_tables() -> dict[str, dict[str, bool]]:
    """rpc name → {role: allowed} from the authorization tables in spec/*.md (every cell but
    one starting with "denied" allows the role, possibly under a resource-level condition)."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted((REPO / "spec").glob("*.md")):
        roles: list[str] | None = None
        for line in path.read_text(encoding="utf-8").splitlines():
            header = ROLE_COLUMNS.match(line.strip())
            if header:
                roles = [r.strip() for r in header.group(1).split("|")]  # a column may name several
                continue
            if roles is None or not line.startswith("|") or line.startswith("| ---"):
                roles = None if not line.startswith("|") else roles
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            for rpc in (r.strip() for r in cells[0].split(",")):
                found[rpc] = {
                    role.strip(): not cell.startswith("denied")
                    for column, cell in zip(roles, cells[1:], strict=False)
                    for role in column.split(",")
                }
    return found


def test_every_generated_rpc_has_a_row() -> None:
    missing = sorted(generated_methods() - set(policy.TABLE))
    assert not missing, "rpcs without a row in reference_server/policy.py:\n  " + "\n  ".join(missing)


def test_rows_agree_with_the_spec_authorization_tables() -> None:
    tables = spec_tables()
    assert tables, "no authorization tables found in spec/"
    mismatches = []
    for method in policy.TABLE:
        rpc = method.rsplit("/", 1)[-1]
        if rpc not in tables or not method.startswith("/ansim.v1."):
            continue
        for role, allowed in tables[rpc].items():
            value = common_pb2.Role.Value("ROLE_" + role)
            if policy.is_allowed(method, value) != allowed:
                mismatches.append(f"{method} {role}: spec says {'allowed' if allowed else 'denied'}")
    assert not mismatches, "\n".join(mismatches)


def test_unknown_methods_are_denied_for_every_role() -> None:
    for role in policy.ANY_ROLE:
        assert not policy.is_allowed("/ansim.v1.NoSuchService/DoThings", role)
    assert not policy.is_public("/ansim.v1.NoSuchService/DoThings")


def test_health_and_reflection_are_public() -> None:
    assert policy.is_public("/grpc.health.v1.Health/Check")
    assert policy.is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not policy.is_public("/ansim.v1.CameraService/GetCamera")
