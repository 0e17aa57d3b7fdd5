"""Container output as pulumi-docker keeps it, for the local verdict tests."""

from __future__ import annotations

import struct


def docker_frames(*chunks: tuple[int, str]) -> str:
    """Docker's multiplexed log stream as pulumi-docker keeps it in `container_logs`: each
    write prefixed with stream, three zero bytes and its length (invalid UTF-8 shows as U+FFFD)."""
    framed = b"".join(
        bytes([stream, 0, 0, 0]) + struct.pack(">I", len(text.encode())) + text.encode()
        for stream, text in chunks
    )
    return framed.decode("utf-8", errors="replace")
