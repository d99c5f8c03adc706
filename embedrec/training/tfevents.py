"""TensorBoard event files written without TensorFlow or torch: the TFRecord framing (length, masked CRC-32C,
data, masked CRC-32C) around hand-encoded ``Event`` protos. ``export --to projector`` writes the version record
that makes TensorBoard list a run; ``loop.TensorBoardLog`` writes scalars (``Summary.Value.simple_value``), which
TensorBoard's scalar dashboard reads like those of ``torch.utils.tensorboard``."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

VERSION = b"brain.Event:2"


def _crc32c(data: bytes) -> int:
    table = _crc32c.table
    if table is None:
        table = _crc32c.table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_crc32c.table = None


def tfrecord(data: bytes) -> bytes:
    def masked(b: bytes) -> bytes:
        c = _crc32c(b)
        return struct.pack("<I", (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    length = struct.pack("<Q", len(data))
    return length + masked(length) + data + masked(data)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # a length-delimited field (wire type 2)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def version_event(wall_time: float) -> bytes:
    """Event{wall_time, file_version}: the first record of every event file."""
    return b"\x09" + struct.pack("<d", wall_time) + _field(3, VERSION)


def scalars_event(values: dict[str, float], step: int, wall_time: float) -> bytes:
    """Event{wall_time, step, summary{value{tag, simple_value}...}}."""
    summary = b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", float(v)))
                       for tag, v in values.items())
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(int(step)) + _field(5, summary)


def new_event_file(folder: Path) -> Path:
    """A fresh event file in ``folder`` holding the version record (TensorBoard discovers runs by these)."""
    now = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events.out.tfevents.{now:.6f}.{socket.gethostname() or 'embedrec'}"
    path.write_bytes(tfrecord(version_event(now)))
    return path
