"""A fast check that a TagEvent keeps every constraint of child_safety.proto (TAG-007).

protovalidate takes ≈ 100 µs per TagEvent here, most of an ingested sighting's CPU. The rules of
a TagEvent without ``location`` are few and simple (a UUID, two anchored patterns, three enums, a
required timestamp, two ranges and the TAG-007 message rule), so :func:`plainly_valid` checks them
directly. It is conservative: True only when every rule holds; False sends the event to
protovalidate, which alone produces the violations of an invalid event (and checks Location's
rules). The rules it mirrors are pinned by :data:`RULES_DIGEST`: should the proto's rules change,
the digest no longer matches and every event goes to protovalidate until this module is updated
(tests/test_tag_event_validation.py fails meanwhile).

:func:`batch_plainly_valid` does the same for a SubmitTagEventsRequest's own rules (1 to 500
events, a UUID request_id), pinned by :data:`BATCH_RULES_DIGEST`: protovalidate over the whole
request would check every event again (≈ 11 µs per event), which the ingest does per event anyway.
"""

from __future__ import annotations

import hashlib
import re

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2
from google.protobuf.descriptor import Descriptor

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_READER = re.compile(r"centers/[a-z0-9][a-z0-9-]{0,62}/readers/[a-z0-9][a-z0-9-]{0,62}")
_TAG_UID = re.compile(r"(?:[0-9A-Za-z-]{8,64})?")
_KINDS = frozenset(cs.TagEventKind.values()) - {cs.TAG_EVENT_KIND_UNSPECIFIED}
_MODES = frozenset(common_pb2.Mode.values()) - {common_pb2.MODE_UNSPECIFIED}
_DIRECTIONS = frozenset(cs.SightingDirection.values())
_NEEDS_UID = frozenset(
    {cs.TAG_EVENT_KIND_SIGHTING, cs.TAG_EVENT_KIND_BUTTON_PRESS, cs.TAG_EVENT_KIND_LOW_BATTERY}
)

#: SHA-256 of the validation rules (field and message options) of the messages checked here.
RULES_DIGEST = "5467f65ac5caa41b23d13dda972530ae90cc73f4838834ae1e193e35ecc47a54"
#: The same for SubmitTagEventsRequest's own fields.
BATCH_RULES_DIGEST = "53a4f5bfecf9645a0e9e79488afe5d63227e992c243cdf55445dfb314c882308"
#: Events per SubmitTagEventsRequest (its ``repeated`` rule, TAG-009).
_BATCH_MIN, _BATCH_MAX = 1, 500


def rules_digest() -> str:
    """The digest of the current rules of TagEvent, SightingDetails and LowBatteryDetails."""
    return _digest([cs.TagEvent.DESCRIPTOR, cs.SightingDetails.DESCRIPTOR, cs.LowBatteryDetails.DESCRIPTOR])


def batch_rules_digest() -> str:
    """The digest of the current rules of SubmitTagEventsRequest's own fields."""
    return _digest([cs.SubmitTagEventsRequest.DESCRIPTOR])


def _digest(descriptors: list[Descriptor]) -> str:
    h = hashlib.sha256()
    for d in descriptors:
        h.update(d.full_name.encode())
        h.update(d.GetOptions().SerializeToString(deterministic=True))
        for f in d.fields:
            h.update(f"{f.name}:{f.number}:{f.type}".encode())
            h.update(f.GetOptions().SerializeToString(deterministic=True))
    return h.hexdigest()


_ENABLED = rules_digest() == RULES_DIGEST
_BATCH_ENABLED = batch_rules_digest() == BATCH_RULES_DIGEST


def batch_plainly_valid(request: cs.SubmitTagEventsRequest) -> bool:
    """True only if ``request``'s own rules hold (its events not looked at: each is checked on its
    own, TAG-009); False means "ask protovalidate", not "invalid"."""
    return (
        _BATCH_ENABLED
        and _BATCH_MIN <= len(request.events) <= _BATCH_MAX
        and _UUID.fullmatch(request.request_id) is not None
    )


def plainly_valid(event: cs.TagEvent) -> bool:
    """True only if ``event`` has no location and keeps every rule of its messages (see module
    docstring); False means "ask protovalidate", not "invalid"."""
    if not _ENABLED or event.HasField("location"):
        return False
    kind = event.kind
    if kind not in _KINDS or event.mode not in _MODES or not event.HasField("observed_time"):
        return False
    uid = event.tag_uid
    if not (_UUID.fullmatch(event.event_id) and _READER.fullmatch(event.reader) and _TAG_UID.fullmatch(uid)):
        return False
    # TAG-007 (message rule): tag_uid, sighting and low_battery go with the kind.
    if (uid == "") if kind in _NEEDS_UID else (kind == cs.TAG_EVENT_KIND_BELL_PRESS and uid != ""):
        return False
    if event.HasField("sighting") != (kind == cs.TAG_EVENT_KIND_SIGHTING):
        return False
    if event.HasField("low_battery") != (kind == cs.TAG_EVENT_KIND_LOW_BATTERY):
        return False
    if kind == cs.TAG_EVENT_KIND_SIGHTING:
        s = event.sighting
        return -127 <= s.rssi_dbm <= 20 and s.direction in _DIRECTIONS
    if kind == cs.TAG_EVENT_KIND_LOW_BATTERY:
        return event.low_battery.battery_percent <= 100
    return True
