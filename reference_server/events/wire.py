"""A stored event's payload made into one stream's response message, on the wire.

Every event stream's response message has ``string cursor = 1`` and ``uint64 sequence = 2``
(DispatchEvent, StreamNotificationsResponse); the rest is the payload the publisher stored. Appending
the two fields' encodings to the stored bytes gives the serialised message with both set (protobuf
parsing merges concatenated encodings; a later scalar wins), without parsing the payload.
"""

from __future__ import annotations

#: Tags of ``string cursor = 1`` and ``uint64 sequence = 2``, the position fields of every event
#: stream's response message (DispatchEvent, StreamNotificationsResponse, ...).
_CURSOR_TAG = b"\x0a"
_SEQUENCE_TAG = b"\x10"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def with_position(payload: bytes, cursor: str, sequence: int) -> bytes:
    """The wire form of the message serialised in ``payload`` with ``cursor = 1`` and
    ``sequence = 2`` set to these values."""
    raw = cursor.encode()
    return b"".join((payload, _CURSOR_TAG, _varint(len(raw)), raw, _SEQUENCE_TAG, _varint(sequence)))
