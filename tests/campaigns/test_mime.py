"""The fast MIME writer produces what the standard library parses back exactly."""
import email
import email.policy

from campaigns import mime


def test_round_trip_with_non_ascii_long_lines_and_dots():
    text = "Grüße, Zoë!\n.leading dot\r\n" + "x" * 200 + "\n= equals =\n"
    html = "<p>价格 <b>€9.90</b></p>\n" + "<i>y</i>" * 100
    raw = mime.build(from_email="Stratum Shop <shop@example.com>", to="zoe@example.com",
                     subject="Grüße – 15% off, Zoë", text=text, html=html,
                     headers={"Message-ID": "<c1.m2.abc@x>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Grüße – 15% off, Zoë"
    assert msg["From"] == "Stratum Shop <shop@example.com>" and msg["To"] == "zoe@example.com"
    assert msg["Message-ID"] == "<c1.m2.abc@x>"
    assert msg.get_content_type() == "multipart/alternative"
    # the wire form is CRLF; the parser leaves it in the decoded text
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == html


def test_text_only_and_header_injection_refused():
    raw = mime.build(from_email="a@example.com", to="b@example.com", subject="Hi", text="plain")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "text/plain" and msg.get_content().strip() == "plain"
    import pytest
    with pytest.raises(ValueError):
        mime.build(from_email="a@example.com", to="b@example.com", subject="Hi\r\nBcc: x@evil", text="t")
