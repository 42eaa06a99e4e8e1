"""The registry of service plugins and demo seeds the ``ansim serve`` command starts with.

Adding a service is one line here (keep them in service order), e.g.::

    from reference_server.services import emergency
    SERVICE_PLUGINS.append(emergency.register)

where ``emergency.register(ctx, server)`` calls
``emergency_pb2_grpc.add_EmergencyServiceServicer_to_server(EmergencyServicer(ctx), server)`` and
returns ``["ansim.v1.EmergencyService"]``. Demo data goes into ``DEMO_SEEDS`` the same way, as
``async def seed(ctx) -> None`` functions run in order once the store is open.
"""

from __future__ import annotations

from reference_server.context import DemoSeed, ServicePlugin

SERVICE_PLUGINS: list[ServicePlugin] = []

DEMO_SEEDS: list[DemoSeed] = []

from reference_server.services import emergency as _emergency  # noqa: E402

SERVICE_PLUGINS.append(_emergency.register)  # EmergencyService and DispatchService (§10, §13)
DEMO_SEEDS.append(_emergency.seed)

from reference_server.services import camera as _camera  # noqa: E402

SERVICE_PLUGINS.append(_camera.register)
DEMO_SEEDS.append(_camera.seed)

from reference_server.services import child_safety as _child_safety  # noqa: E402

SERVICE_PLUGINS.append(_child_safety.register)
DEMO_SEEDS.append(_child_safety.seed)

from reference_server.services import safe_trip as _safe_trip  # noqa: E402

SERVICE_PLUGINS.append(_safe_trip.register)

from reference_server.services import statistics as _statistics  # noqa: E402

SERVICE_PLUGINS.append(_statistics.register)

#: What ``ansim serve --role directory`` runs instead of SERVICE_PLUGINS: the national directory.
from reference_server.services import directory as _directory  # noqa: E402

DIRECTORY_PLUGINS: list[ServicePlugin] = [_directory.register]

from reference_server.services import federation as _federation  # noqa: E402

SERVICE_PLUGINS.append(_federation.register)
