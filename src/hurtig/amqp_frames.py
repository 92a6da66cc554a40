"""The bytes of the AMQP 0-9-1 frames the API's publisher builds and reads by hand
(hurtig.amqp_wire): the frame layout, the publish and content-header frames, the confirm."""

from __future__ import annotations

import struct

CHANNEL = 1
FRAME_END = b"\xce"
HEAD = struct.Struct(">BHI")  # frame type, channel, payload size
ACK = struct.Struct(">QB")  # delivery tag, bits (multiple; requeue for a nack)
ACK_HEAD = b"\x01" + CHANNEL.to_bytes(2, "big") + (13).to_bytes(4, "big") + b"\x00\x3c"
ACK_METHOD, NACK_METHOD = b"\x00\x50", b"\x00\x78"
# content header: class 60, weight 0, body size, flags (content-type, delivery-mode, message-id, timestamp)
CONTENT = struct.Struct(">HHQH")
FLAGS = (1 << 15) | (1 << 12) | (1 << 7) | (1 << 6)
JSON_TYPE = b"\x10application/json\x02"  # shortstr content-type, then delivery mode 2 (persistent)
STAMP = struct.Struct(">Q")


class Unavailable(Exception):
    """The job could not be confirmed by the broker: answer 503, never 202."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def shortstr(value: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError("an AMQP short string holds at most 255 bytes")
    return bytes((len(data),)) + data


def frame(kind: int, payload: bytes) -> bytes:
    return HEAD.pack(kind, CHANNEL, len(payload)) + payload + FRAME_END


def publish_frame(exchange: str, routing_key: str) -> bytes:
    """Basic.Publish to the exchange with the routing key, mandatory: the same bytes for
    every job of a function."""
    return frame(1, b"\x00\x3c\x00\x28\x00\x00" + shortstr(exchange) + shortstr(routing_key) + b"\x01")
