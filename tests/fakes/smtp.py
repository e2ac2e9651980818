"""A local SMTP server (aiosmtpd) that keeps every message it receives, for mail tests."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def token_in(message: EmailMessage) -> str:
        body = message.get_body(("plain",))
        assert body is not None
        found = re.search(r"[?&]token=([A-Za-z0-9_\-]+)", body.get_content())
        assert found, body.get_content()
        return found.group(1)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.box.messages.append(message)
        return "250 Message accepted for delivery"


@contextmanager
def local_smtp_server() -> Iterator[Mailbox]:
    with socket.socket() as s:  # aiosmtpd's start-up probe needs a real port number
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box = Mailbox(host="127.0.0.1", port=port)
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
