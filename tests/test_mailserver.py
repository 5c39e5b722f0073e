"""The test mail server fixture itself: it refuses a busy port clearly, and leaves nothing behind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.mailserver import MailServer, MailServerError, require_server

pytestmark = pytest.mark.mailserver


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except ProcessLookupError:
                pass
    return members


def test_a_port_used_by_something_else_is_a_clear_failure() -> None:
    require_server()
    with socket.socket() as busy:
        busy.bind(("127.0.0.40", 993))
        busy.listen()
        server = MailServer(["imap.example"], ["example"], {"u@example": "p"}, addresses=["127.0.0.40"])
        with pytest.raises(MailServerError, match=r"port\(s\) 993 on 127\.0\.0\.40 are in use by something else"):
            server.__enter__()
        assert server.process_groups == []  # nothing was started


def test_everything_stops_and_is_removed() -> None:
    require_server()
    with MailServer(["mail.example"], ["example"], {"u@example": "p"}, addresses=["127.0.0.41"]) as server:
        root, groups = server.root, server.process_groups
        assert len(groups) == 2 and all(len(_group_members(g)) >= 2 for g in groups)  # masters and children
        assert (root / "dovecot" / "dovecot.conf").exists()
    assert not root.exists()
    assert all(_group_members(g) == [] for g in groups)
    with socket.socket() as again:  # the address is free for the next run
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.41", 995))
