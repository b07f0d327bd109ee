"""A real SMTP server (aiosmtpd) that records what it accepted: (recipient, Message-ID)."""
from __future__ import annotations

import re
import socket
import threading

from aiosmtpd.controller import Controller

_MID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        match = _MID.search(envelope.original_content or envelope.content)
        mid = match.group(1).decode() if match else ""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, mid))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.received)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(port: int | None = None) -> tuple[Controller, Recorder]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port or free_port(), data_size_limit=10_000_000)
    controller.start()
    return controller, recorder
