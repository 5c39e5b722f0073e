"""`mailprofile send` against a real SMTP server (aiosmtpd): implicit TLS, STARTTLS, AUTH, scripted replies,
the outbox journal, and a sender killed with SIGKILL mid-run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator.build import BuildOptions, build, prepare
from generator.cli import main
from generator.errors import BuildError
from generator.sender import MAX_BACKOFF, SendOptions, SmtpTarget, backoff_wait, load_outbox_messages, send_all
from generator.spec import load_spec
from generator.targets.guide import parse_html_guide
from tests.conftest import EXAMPLES, ROOT, interruptible
from tests.smtpd import PASSWORD, USER, Handler, Received, free_port, smtp_server
from tests.test_spec_errors import BASE

DELIVERY = EXAMPLES / "delivery.yaml"


def _spec(tmp_path: Path, accounts: int) -> Path:
    rows = "".join(f"  - {{name: User {i}, email: user{i}@esempio.it, language: {'it' if i % 2 else 'en'}}}\n"
                   for i in range(accounts))
    text = BASE.replace("accounts:\n  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n", "accounts:\n" + rows)
    path = tmp_path / "spec.yaml"
    path.write_text(text + 'delivery: {sender: "IT <it@esempio.it>", language: it}\n', encoding="utf-8")
    return path


def _out(tmp_path: Path, spec: Path = DELIVERY) -> Path:
    out = tmp_path / "out"
    build(prepare(load_spec(spec), ["message"]), BuildOptions(out=out, jobs=1))
    return out


def _send(out: Path, port: int, *args: str, cafile: Path | None = None, security: str = "ssl",
          user: str | None = USER, password: str | None = PASSWORD) -> Result:
    argv = ["send", str(out), "--smtp", f"127.0.0.1:{port}", "--security", security, "--backoff", "0", *args]
    if cafile is not None:
        argv += ["--cafile", str(cafile)]
    if user:
        argv += ["--user", user]
    env = {"MAILPROFILE_SMTP_PASSWORD": password} if password else {}
    return CliRunner().invoke(main, argv, env=env, catch_exceptions=False)


def _parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def _states(out: Path) -> dict[str, str]:
    with sqlite3.connect(out.with_name(out.name + ".outbox.sqlite")) as db:
        return dict(db.execute("SELECT account, state FROM outbox").fetchall())


def _check_delivery(out: Path, received: list[Received]) -> None:
    """Each message received is what the build wrote (but for the send-time Date), with the right profile."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    profiles = {e["account"]: e["sha256"] for e in manifest["files"] if e["kind"] == "mobileconfig"}
    for message in received:
        msg = _parse(message.data)
        account = str(msg["X-Mailprofile-Account"])
        [attachment] = list(msg.iter_attachments())
        assert hashlib.sha256(attachment.get_content()).hexdigest() == profiles[account]
        built = _parse((out / f"{account}/message/{account}.eml").read_bytes())
        assert msg["Message-ID"] == built["Message-ID"] and msg["Subject"] == built["Subject"]
        assert msg["Date"] != built["Date"]  # stamped at send time
        html = msg.get_body(("html",))
        assert html is not None
        guide = parse_html_guide(html.get_content().encode())
        assert guide.lang == msg["Content-Language"]
        assert guide.tables["settings"]["incoming.host"] == "pop3s.aruba.it"
        assert guide.tables["settings"]["incoming.port"] == "995"


def test_implicit_tls_with_auth(tmp_path: Path) -> None:
    out = _out(tmp_path)
    with smtp_server(tmp_path, "ssl") as (handler, port, ca):
        result = _send(out, port, cafile=ca)
    assert result.exit_code == 0, result.output
    assert sorted(m.recipients[0] for m in handler.messages) == ["jane@example.org", "mario.rossi@esempio.it"]
    assert all(m.sender == "it@esempio.it" for m in handler.messages)
    _check_delivery(out, handler.messages)
    languages = {_parse(m.data)["X-Mailprofile-Account"]: _parse(m.data)["Content-Language"] for m in handler.messages}
    assert languages == {"mario.rossi@esempio.it": "it", "jane.doe@esempio.it": "en"}
    assert result.output.splitlines()[-1].startswith("send: 2 sent, 0 failed, 0 uncertain, 0 still pending")
    assert PASSWORD not in result.output
    assert _states(out) == {"mario.rossi@esempio.it": "sent", "jane.doe@esempio.it": "sent"}
    journal = out.with_name("out.outbox.sqlite").read_bytes()
    assert PASSWORD.encode() not in journal


def test_starttls_with_auth_and_rerun_sends_nothing(tmp_path: Path) -> None:
    out = _out(tmp_path)
    with smtp_server(tmp_path, "starttls") as (handler, port, ca):
        first = _send(out, port, cafile=ca, security="starttls")
        second = _send(out, port, cafile=ca, security="starttls")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert len(handler.messages) == 2
    assert second.output.splitlines()[-1].startswith("send: 0 sent, 0 failed, 0 uncertain, 0 still pending, "
                                                      "2 sent before")


def test_wrong_password_is_refused_before_sending(tmp_path: Path) -> None:
    out = _out(tmp_path)
    with smtp_server(tmp_path, "ssl") as (handler, port, ca):
        result = _send(out, port, cafile=ca, password="wrong")
    assert result.exit_code == 2 and "SMTP authentication failed: 535" in result.output
    assert handler.messages == [] and "wrong" not in result.output


def test_untrusted_certificate_is_not_accepted(tmp_path: Path) -> None:
    out = _out(tmp_path)
    with smtp_server(tmp_path, "ssl") as (handler, port, _ca):
        result = _send(out, port)  # the system CAs do not know our test certificate
    assert result.exit_code == 1 and handler.messages == []
    assert result.output.splitlines() == [
        f"error: 127.0.0.1:{port} (--security ssl): the server's certificate is not trusted (self-signed "
        "certificate) — give --cafile with the CA that issued it, or use the name the certificate is for",
        "nothing more was sent (messages already sent stay in the journal): correct it and run again"]
    assert set(_states(out).values()) == {"pending"}


@pytest.mark.parametrize(("server", "security", "expected"), [
    ("starttls", "ssl", "TLS failed (WRONG_VERSION_NUMBER) — check the port and --security"),
    ("none", "starttls", "STARTTLS extension not supported by server — check the port and --security"),
], ids=["ssl-on-a-starttls-port", "starttls-not-offered"])
def test_a_wrong_security_setting_stops_at_once(tmp_path: Path, server: str, security: str, expected: str) -> None:
    """--security ssl against a STARTTLS port, or starttls against a server without it: every message waited
    out --retries with doubling back-off (30 s each by default, 83 hours for 10,000) and stayed pending."""
    out = _out(tmp_path, _spec(tmp_path, 3))
    waits: list[float] = []
    with smtp_server(tmp_path, server, auth=False) as (handler, port, ca):
        result = _send(out, port, cafile=ca, security=security)
        with pytest.raises(BuildError) as info:
            send_all(out, load_outbox_messages(out), SmtpTarget("127.0.0.1", port, security, USER, PASSWORD, ca),
                     SendOptions(), sleep=waits.append)
    assert result.exit_code == 1 and f"error: 127.0.0.1:{port} (--security {security}): {expected}" in result.output
    assert expected in str(info.value) and waits == [] and handler.messages == []
    assert set(_states(out).values()) == {"pending"}


def test_an_unreachable_server_stops_the_run_after_one_messages_retries(tmp_path: Path) -> None:
    """Connection refused: the retries of the first message, then the run stops (every message pending);
    it used to wait out the same retries again for each message."""
    out = _out(tmp_path, _spec(tmp_path, 4))
    waits: list[float] = []
    port = free_port()
    summary = send_all(out, load_outbox_messages(out), SmtpTarget("127.0.0.1", port, "ssl", USER, PASSWORD),
                       SendOptions(retries=2, backoff=1.0), sleep=waits.append)
    assert waits == [1.0, 2.0] and (summary.sent, summary.pending) == (0, 4)
    assert summary.lines == [f"stopped: 127.0.0.1:{port}: connection failed: connection refused after 3 attempt(s); "
                             "4 message(s) still pending — check --smtp (host and port) and that the server is "
                             "running and reachable from here, then run again"]
    assert set(_states(out).values()) == {"pending"}


def test_451_then_250_delivers_once(tmp_path: Path) -> None:
    out = _out(tmp_path)
    handler = Handler(script=lambda rcpt, attempt: "451 4.3.0 try again later" if attempt == 0 else None)
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        result = _send(out, port, cafile=ca)
    assert result.exit_code == 0, result.output
    assert handler.attempts == {"mario.rossi@esempio.it": 2, "jane@example.org": 2}
    assert sorted(m.recipients[0] for m in handler.messages) == ["jane@example.org", "mario.rossi@esempio.it"]
    # The retry sends the same bytes as the first attempt would have (Date fixed in the journal).
    _check_delivery(out, handler.messages)


def test_550_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    out = _out(tmp_path)
    handler = Handler(script=lambda rcpt, attempt: "550 5.1.1 no such user" if rcpt == "jane@example.org" else None)
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        result = _send(out, port, cafile=ca)
        again = _send(out, port, cafile=ca)
    assert result.exit_code == 3
    assert "failed  jane.doe@esempio.it -> jane@example.org: 550 5.1.1 no such user" in result.output
    assert [m.recipients[0] for m in handler.messages] == ["mario.rossi@esempio.it"]
    assert handler.attempts["jane@example.org"] == 1  # a permanent failure is not retried...
    assert again.exit_code == 3 and "failed earlier" in again.output  # ...nor re-sent by a re-run
    assert _states(out) == {"mario.rossi@esempio.it": "sent", "jane.doe@esempio.it": "failed"}
    with sqlite3.connect(out.with_name("out.outbox.sqlite")) as db:
        assert db.execute("SELECT reply FROM outbox WHERE state = 'failed'").fetchone() == ("550 5.1.1 no such user",)


def test_temporary_failures_stay_pending_after_the_retries(tmp_path: Path) -> None:
    out = _out(tmp_path)
    handler = Handler(script=lambda rcpt, attempt: "421 4.7.0 slow down")
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        result = _send(out, port, "--retries", "2", cafile=ca)
    assert result.exit_code == 3 and "2 still pending" in result.output
    assert handler.attempts == {"mario.rossi@esempio.it": 3, "jane@example.org": 3}
    assert set(_states(out).values()) == {"pending"}


def test_the_doubling_back_off_stops_at_five_minutes(tmp_path: Path) -> None:
    """--retries 40 against a server that always says 421: the waits double from --backoff and stop at
    MAX_BACKOFF (uncapped, the last would be 2 * 2**39 s, and --retries 1100 overflowed a float). The waits are
    recorded through send_all's sleep, not slept: the server and the client are real."""
    out = _out(tmp_path)
    handler = Handler(script=lambda rcpt, attempt: "421 4.7.0 slow down")
    waits: list[float] = []
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        summary = send_all(out, load_outbox_messages(out)[:1], SmtpTarget("127.0.0.1", port, "ssl", USER, PASSWORD, ca),
                           SendOptions(retries=40, backoff=2.0), sleep=waits.append)
    assert summary.pending == 1 and handler.attempts == {"mario.rossi@esempio.it": 41}
    assert waits == [min(2.0 * 2 ** n, MAX_BACKOFF) for n in range(40)] and max(waits) == MAX_BACKOFF == 300.0
    assert backoff_wait(2.0, 1100) == MAX_BACKOFF


def test_waits_the_cli_cannot_express(tmp_path: Path) -> None:
    out = _out(tmp_path)
    for option, value in (("--backoff", "301"), ("--rate", "0"), ("--rate", "1e-300")):
        result = CliRunner().invoke(main, ["send", str(out), "--smtp", "127.0.0.1:25", "--security", "none",
                                           option, value])
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output


def test_dry_run_to_a_closed_port_says_what_to_check(tmp_path: Path) -> None:
    out = _out(tmp_path)
    port = free_port()
    result = _send(out, port, "--dry-run")
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        f"error: cannot reach 127.0.0.1:{port}: connection failed: connection refused — check --smtp (host and "
        "port) and that the server is running and reachable from here")


def test_dry_run_authenticates_and_sends_nothing(tmp_path: Path) -> None:
    out = _out(tmp_path)
    with smtp_server(tmp_path, "ssl") as (handler, port, ca):
        result = _send(out, port, "--dry-run", cafile=ca)
    assert result.exit_code == 0, result.output
    assert "would send  mario.rossi@esempio.it -> mario.rossi@esempio.it" in result.output
    assert "2 would be sent (dry run)" in result.output and handler.messages == [] and handler.data_seen == 0


def test_rate_limit_spaces_the_messages(tmp_path: Path) -> None:
    out = _out(tmp_path, _spec(tmp_path, 3))
    with smtp_server(tmp_path, "ssl") as (handler, port, ca):
        started = time.monotonic()
        result = _send(out, port, "--rate", "5", cafile=ca)
        elapsed = time.monotonic() - started
    assert result.exit_code == 0 and len(handler.messages) == 3
    assert elapsed >= 0.4  # three messages at 5/s: at least two 0.2 s gaps (a bound, not a benchmark)


def test_only_changed_after_a_rebuild(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 3)
    out = _out(tmp_path, spec)
    with smtp_server(tmp_path, "ssl") as (handler, port, ca):
        assert _send(out, port, cafile=ca).exit_code == 0
        spec.write_text(spec.read_text(encoding="utf-8").replace("User 1,", "User One,"), encoding="utf-8")
        out = _out(tmp_path, spec)  # a new build: a new batch
        result = _send(out, port, "--only-changed", cafile=ca)
    assert result.exit_code == 0, result.output
    assert [m.recipients[0] for m in handler.messages] == [
        "user0@esempio.it", "user1@esempio.it", "user2@esempio.it", "user1@esempio.it"]
    assert "1 sent" in result.output and "2 unchanged skipped" in result.output


def test_profile_with_password_needs_allow_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_TEST_PASSWORD", "s3cret-Passw0rd")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + 'delivery: {sender: "IT <it@esempio.it>"}\n'
                    "passwords: {include: true, from_env: MP_TEST_PASSWORD}\n", encoding="utf-8")
    out = _out(tmp_path, spec)
    with smtp_server(tmp_path, "ssl") as (handler, port, ca):
        refused = _send(out, port, cafile=ca)
        assert refused.exit_code == 2 and "carry a profile with a password" in refused.output
        assert handler.messages == []
        allowed = _send(out, port, "--allow-secrets", cafile=ca)
    assert allowed.exit_code == 0 and "warning: 1 message(s) carry a password" in allowed.output
    assert len(handler.messages) == 1
    assert b"s3cret-Passw0rd" not in out.with_name("out.outbox.sqlite").read_bytes()


def test_security_none_only_for_a_local_relay_without_password(tmp_path: Path) -> None:
    out = _out(tmp_path)
    with smtp_server(tmp_path, "none", auth=False) as (handler, port, _ca):
        with_password = _send(out, port, security="none")
        assert with_password.exit_code == 2 and "--security none would send the SMTP password in clear" in \
            with_password.output
        relay = _send(out, port, security="none", user=None, password=None)
    assert relay.exit_code == 0 and len(handler.messages) == 2
    remote = CliRunner().invoke(main, ["send", str(out), "--smtp", "smtp.example.com:25", "--security", "none"])
    assert remote.exit_code == 2 and "only for a relay on this machine" in remote.output


def test_edited_message_is_refused(tmp_path: Path) -> None:
    out = _out(tmp_path)
    eml = out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml"
    eml.write_bytes(eml.read_bytes().replace(b"Subject:", b"Subject: [edited]", 1))
    result = CliRunner().invoke(main, ["send", str(out), "--smtp", "127.0.0.1:9", "--security", "none"])
    assert result.exit_code == 1 and "differs from its manifest entry" in result.output


def test_password_never_on_the_command_line() -> None:
    result = CliRunner().invoke(main, ["send", "--help"])
    assert "--password" not in result.output and "MAILPROFILE_SMTP_PASSWORD" in result.output


# --- crash safety --------------------------------------------------------------------------------------------

def _slow_send_under_way(out: Path, port: int, ca: Path, handler: Handler, delay: float = 1.0,
                         reached: int = 1) -> subprocess.Popen[bytes]:
    """A `send` of OUT in its own process, the server taking `delay` seconds per message, once `reached`
    messages have reached DATA."""
    handler.delay = delay
    env = {**os.environ, "MAILPROFILE_SMTP_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "generator", "send", str(out), "--smtp", f"127.0.0.1:{port}", "--security", "ssl",
            "--cafile", str(ca), "--user", USER, "-q"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=interruptible)
    deadline = time.monotonic() + 60
    while handler.data_seen < reached and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


def test_sigkill_mid_run_then_rerun(tmp_path: Path) -> None:
    """Kill -9 while the server holds message 3 before answering: that one is uncertain; a re-run sends the
    rest and not it; --retry-uncertain re-sends it with the same Message-ID."""
    out = _out(tmp_path, _spec(tmp_path, 6))
    handler = Handler(delay=0.0)
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        # 2 s a message: long enough for this thread to see the third even on a loaded machine
        process = _slow_send_under_way(out, port, ca, handler, delay=2.0, reached=3)
        try:
            assert handler.data_seen == 3
            os.kill(process.pid, signal.SIGKILL)
        finally:
            _out_text, errors = process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL, errors
        time.sleep(0.2)  # the server notices the dropped connection (the message was queued before)
        delivered_before = [m.recipients[0] for m in handler.messages]
        assert delivered_before == ["user0@esempio.it", "user1@esempio.it", "user2@esempio.it"]
        handler.delay = 0.0
        rerun = _send(out, port, cafile=ca)
        assert rerun.exit_code == 3  # an uncertain message is not a clean run
        assert "user2@esempio.it" in rerun.output and "uncertain" in rerun.output
        assert _states(out)["user2@esempio.it"] == "uncertain"
        recipients = [m.recipients[0] for m in handler.messages]
        assert sorted(recipients) == [f"user{i}@esempio.it" for i in range(6)]  # each exactly once
        retry = _send(out, port, "--retry-uncertain", cafile=ca)
    assert retry.exit_code == 0, retry.output
    [first, second] = [m for m in handler.messages if m.recipients[0] == "user2@esempio.it"]
    assert first.data == second.data  # same Message-ID, same Date, same bytes: a receiver can de-duplicate
    assert set(_states(out).values()) == {"sent"}
    _check_delivery(out, handler.messages)


def test_a_second_send_on_the_same_journal_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    """Two runs at once (a cron job that overlaps the previous one): the second took the first's in-flight
    message for a crash ('uncertain') and sent again every message the first had not finished."""
    spec = _spec(tmp_path, 4)
    out = _out(tmp_path, spec)
    other = _out(tmp_path / "other", spec)  # the same build elsewhere, sharing the journal
    journal = out.with_name("out.outbox.sqlite")
    handler = Handler(delay=0.0)
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        first = _slow_send_under_way(out, port, ca, handler)
        try:
            second = _send(other, port, "--journal", str(journal), cafile=ca)
            dry = _send(other, port, "--journal", str(journal), "--dry-run", cafile=ca)
            same_out = _send(out, port, cafile=ca)
        finally:
            first_out, first_err = first.communicate(timeout=60)
        handler.delay = 0.0
        third = _send(out, port, cafile=ca)
    for refused in (second, dry):
        assert refused.exit_code == 1 and refused.output == (
            f"error: {journal}: another mailprofile send is using this journal; wait for it to finish (two at once "
            "would send the same messages twice)\n")
    assert same_out.exit_code == 1 and same_out.output.startswith(
        f"error: a mailprofile send (process {first.pid}) is sending the messages in {out}; wait for it")
    assert first.returncode == 0, first_err
    assert first_out.decode().startswith("send: 4 sent, 0 failed, 0 uncertain")
    assert sorted(m.recipients[0] for m in handler.messages) == [f"user{i}@esempio.it" for i in range(4)]
    assert third.exit_code == 0 and "0 sent" in third.output and "4 sent before" in third.output


def test_no_rebuild_while_sending_and_only_the_checked_bytes_go_out(tmp_path: Path) -> None:
    """A rebuild of OUT during a send had the rest of the batch go out with the new build's bytes (checked
    against nothing; a message of a removed account was an internal error), and the next run on the new build
    sent them all again. The send now holds OUT's build lock, and sends only the bytes it checked."""
    spec = _spec(tmp_path, 3)
    out = _out(tmp_path, spec)
    built = {p.name: p.read_bytes() for p in out.rglob("*.eml")}
    handler = Handler(delay=0.0)
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        sending = _slow_send_under_way(out, port, ca, handler)
        try:
            spec.write_text(spec.read_text(encoding="utf-8").replace("User 2,", "User Two,"), encoding="utf-8")
            rebuild = CliRunner().invoke(main, ["messages", str(spec), "--out", str(out), "-j", "1", "-q"])
        finally:
            _sent_out, errors = sending.communicate(timeout=60)
        assert sending.returncode == 0, errors
        assert rebuild.exit_code == 1 and rebuild.output.startswith(
            f"error: a mailprofile send (process {sending.pid}) is sending the messages in {out}; wait for it to "
            "finish (meanwhile a rebuild would change what it sends, a second send would repeat it)")
        assert {p.name: p.read_bytes() for p in out.rglob("*.eml")} == built
        # Bytes that change between the check and the send (a hand edit) are not sent.
        handler.delay = 0.0
        out2 = _out(tmp_path / "b", spec)
        messages = load_outbox_messages(out2)
        eml = out2 / messages[1].path
        eml.write_bytes(eml.read_bytes().replace(b"Subject:", b"Subject: [edited]", 1))
        with pytest.raises(BuildError) as info:
            send_all(out2, messages, SmtpTarget("127.0.0.1", port, "ssl", USER, PASSWORD, ca), SendOptions())
    assert str(info.value) == (f"{messages[1].path} changed after the send started (edited by hand?): nothing more "
                               "was sent; rebuild with mailprofile messages and run send again")
    assert [_parse(m.data)["X-Mailprofile-Account"] for m in handler.messages] == [
        "user0@esempio.it", "user1@esempio.it", "user2@esempio.it", "user0@esempio.it"]
    assert _states(out2) == {"user0@esempio.it": "sent", "user1@esempio.it": "pending", "user2@esempio.it": "pending"}


def test_ctrl_c_says_how_to_resume(tmp_path: Path) -> None:
    """Ctrl-C printed click's bare 'Aborted!' with exit 1 (the status of 'OUT is not a message build')."""
    out = _out(tmp_path, _spec(tmp_path, 3))
    handler = Handler(delay=0.0)
    with smtp_server(tmp_path, "ssl", handler) as (_, port, ca):
        process = _slow_send_under_way(out, port, ca, handler)
        try:
            process.send_signal(signal.SIGINT)
        finally:
            stdout, stderr = process.communicate(timeout=60)
        handler.delay = 0.0
        again = _send(out, port, cafile=ca)
    assert process.returncode == 130 and stdout == b""
    assert stderr.decode() == ("\ninterrupted: run the same command again to resume (a message that was on the wire "
                               "is reported uncertain)\n")
    assert _states(out) == {"user0@esempio.it": "uncertain", "user1@esempio.it": "sent", "user2@esempio.it": "sent"}
    assert again.exit_code == 3 and "1 uncertain" in again.output


def test_send_refuses_folders_and_manifests_that_are_not_a_mailprofile_build(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.json").write_text('{"name": "a web app", "icons": []}')
    result = CliRunner().invoke(main, ["send", str(site), "--smtp", "127.0.0.1:25", "--security", "none"])
    assert result.exit_code == 1 and "not a mailprofile output" in result.output
    out = _out(tmp_path)
    manifest = out / "manifest.json"
    text = manifest.read_text(encoding="utf-8")
    entry = next(e for e in json.loads(text)["files"] if e["kind"] == "eml")
    manifest.write_text(text.replace(f'"path": "{entry["path"]}"', '"path": "../../../etc/passwd"', 1),
                        encoding="utf-8")
    result = CliRunner().invoke(main, ["send", str(out), "--smtp", "127.0.0.1:25", "--security", "none"])
    assert result.exit_code == 1 and "outside" in result.output and "Traceback" not in result.output


def test_journal_is_never_a_foreign_file_nor_inside_the_output(tmp_path: Path) -> None:
    out = _out(tmp_path)
    spec_copy = tmp_path / "spec.yaml"
    spec_copy.write_text("provider: {id: x}\n")
    other_db = tmp_path / "automx2.sqlite"
    with sqlite3.connect(other_db) as db:
        db.execute("CREATE TABLE provider (id INTEGER)")
    db.close()
    cases = {spec_copy: "not an outbox journal (file is not a database); give the journal of the earlier sends (from "
                        "a backup if this one is damaged), or a new file for a first send: a new journal has no "
                        "record of what was sent, so every message would go out again",
             other_db: "an SQLite database that is not a mailprofile outbox journal (tables: provider)",
             out / "journal.sqlite": "which the next build replaces",
             tmp_path / "no-such-folder/j.sqlite": f"the folder {tmp_path / 'no-such-folder'} does not exist; "
                                                    "create it or give --journal a file in an existing folder"}
    for journal, message in cases.items():
        before = journal.read_bytes() if journal.exists() else None
        result = CliRunner().invoke(main, ["send", str(out), "--smtp", "127.0.0.1:1", "--security", "none",
                                           "--journal", str(journal), "--dry-run"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert (journal.read_bytes() if journal.exists() else None) == before
    with sqlite3.connect(other_db) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["provider"]
    db.close()
