"""Tag events from the demo declaration's reader at the school gate, for tests that ingest them."""

from __future__ import annotations

import uuid
from datetime import datetime

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2

CENTER = "centers/demo"
#: The demo reader at the school gate and the demo ward's tag.
SCHOOL_GATE = f"{CENTER}/readers/school-gate"
WARD_TAG = "3F2A9C01"


def school_gate_sighting(observed: datetime, direction: int) -> cs.TagEvent:
    """A TEST-mode sighting of the demo ward's tag at the school gate, observed at ``observed``."""
    event = cs.TagEvent(
        event_id=str(uuid.uuid4()),
        reader=SCHOOL_GATE,
        tag_uid=WARD_TAG,
        kind=cs.TAG_EVENT_KIND_SIGHTING,
        mode=common_pb2.MODE_TEST,
        sighting=cs.SightingDetails(direction=direction),  # type: ignore[arg-type]
    )
    event.observed_time.FromDatetime(observed)
    return event
