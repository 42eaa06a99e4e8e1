"""Client mode of the runner: host the harness center, let the client under test follow the
scenario, then evaluate the recording with the client profile's cases and report as server mode does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import SecretStr

from ansim_sdk.catalogue import Requirement
from conformance.context import new_run_id
from conformance.declaration import Credentials, Declaration, Metadata, Tls
from conformance.harness.session import HarnessSession
from conformance.registry import Registry
from conformance.results import RunResult
from conformance.runner import RunOptions, run_suite

#: The token role a client of each profile calls as (only for the declaration the reports show).
PROFILE_ROLE = {"app": "APP_USER", "reader-gateway": "READER_GATEWAY", "agency": "POLICE_OFFICER"}
DEFAULT_WAIT_S = 120.0


def client_declaration(session: HarnessSession) -> Declaration:
    """The declaration a client-mode report shows: the harness as the target, the client's profile."""
    tls = Tls(insecure=True) if session.ca_file is None else Tls(ca_file=session.ca_file)
    return Declaration(
        metadata=Metadata(vendor="client under test", product=f"{session.role} client", version="-"),
        target=session.address,
        tls=tls,
        credentials=Credentials(tokens={PROFILE_ROLE[session.role]: SecretStr("harness-does-not-check")}),
        profiles=[session.role],
    )


async def run_client_mode(
    session: HarnessSession,
    registry: Registry,
    catalogue: Mapping[str, Requirement],
    options: RunOptions,
    *,
    wait_s: float = DEFAULT_WAIT_S,
    on_ready: Callable[[HarnessSession], None] | None = None,
) -> RunResult:
    """Start ``session``, wait for the scenario (at most ``wait_s``), evaluate, stop."""
    run_id = new_run_id()
    await session.start()
    try:
        for line in session.instructions():
            session.announce(line)
        session.scenario.bind_announce_current()
        if on_ready is not None:
            on_ready(session)
        finished = await session.wait(wait_s)
        session.register(run_id)
        result = await run_suite(registry, client_declaration(session), catalogue, options, run_id=run_id)
    finally:
        session.unregister(run_id)
        await session.stop()
    history = ", ".join(f"{name} ({how})" for name, how in session.scenario.history)
    result.notes.append(f"harness scenario: {history or 'no step ended'}")
    if not finished:
        result.notes.append(
            f"the scenario did not finish within {wait_s:g} s "
            f"(stopped at step {session.scenario.current_name})"
        )
    return result
