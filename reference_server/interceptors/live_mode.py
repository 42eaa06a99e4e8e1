"""Insecure development mode refuses LIVE traffic: any request carrying ``Mode`` MODE_LIVE, at any
depth, ends with PERMISSION_DENIED / LIVE_MODE_REFUSED before it reaches a servicer.

Installed only when the center runs with ``insecure_dev`` (plain TCP, no client certificates), so a
development server can never take part in a real emergency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ansim.v1 import common_pb2, error_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ansim_sdk.errors import AnsimError
from reference_server.interceptors.wrapping import AroundInterceptor, Call, Invoke

MODE_ENUM = common_pb2.Mode.DESCRIPTOR.full_name


def carries_live_mode(message: Message) -> bool:
    """True if ``message`` or any message inside it has a Mode field set to MODE_LIVE."""
    for field, value in message.ListFields():
        if field.enum_type is not None and field.enum_type.full_name == MODE_ENUM:
            values = value if _is_repeated(field) else [value]
            if common_pb2.MODE_LIVE in values:
                return True
        elif field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                items = list(value.values())
            else:
                items = list(value) if _is_repeated(field) else [value]
            if any(isinstance(item, Message) and carries_live_mode(item) for item in items):
                return True
    return False


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _refused() -> AnsimError:
    return AnsimError(
        error_pb2.ERROR_REASON_LIVE_MODE_REFUSED,
        "this center runs in insecure development mode and refuses LIVE requests; use TEST or EXERCISE",
    )


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in requests:
        if isinstance(item, Message) and carries_live_mode(item):
            raise _refused()
        yield item


class LiveModeGuard(AroundInterceptor):
    async def around(self, call: Call, invoke: Invoke) -> Any:
        if isinstance(call.request, Message) and carries_live_mode(call.request):
            raise _refused()
        if call.request_streaming:
            call.requests = _checked(call.requests)
        return await invoke()
