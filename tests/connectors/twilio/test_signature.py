"""Only Twilio's own requests pass, also behind a reverse proxy."""

from __future__ import annotations

import hashlib
import json

import pytest
from twilio.request_validator import RequestValidator

from connectors.twilio import urls
from connectors.twilio.parse import WebhookForm
from connectors.twilio.signature import public_url, verify
from tests.connectors.twilio.samples import AUTH_TOKEN, PUBLIC_BASE_URL, form, raw

SMS_URL = PUBLIC_BASE_URL + urls.INBOUND_MESSAGE
PROXY = "10.0.0.2"


def sign(url: str, params: object) -> str:
    """What Twilio puts in X-Twilio-Signature for a request to ``url``."""
    return str(RequestValidator(AUTH_TOKEN).compute_signature(url, params))


def url_seen(
    headers: dict[str, str] | None = None,
    remote_addr: str | None = PROXY,
    trusted_proxies: tuple[str, ...] = (),
    path: str = urls.INBOUND_MESSAGE,
    query_string: str = "",
    public_base_url: str = PUBLIC_BASE_URL,
) -> str:
    return public_url(
        path=path,
        query_string=query_string,
        headers=headers or {},
        remote_addr=remote_addr,
        public_base_url=public_base_url,
        trusted_proxies=trusted_proxies,
    )


def test_twilios_signature_over_the_public_url_is_accepted() -> None:
    body = form("inbound_sms.txt")
    signature = sign(SMS_URL, dict(body))

    assert verify(url_seen(), body, signature, AUTH_TOKEN)


def test_a_changed_body_is_rejected() -> None:
    signature = sign(SMS_URL, dict(form("inbound_sms.txt")))
    tampered = WebhookForm.from_body(raw("inbound_sms.txt").replace(b"order+%231042", b"order+%239999"))

    assert dict(tampered) != dict(form("inbound_sms.txt"))
    assert not verify(SMS_URL, tampered, signature, AUTH_TOKEN)


def test_an_added_field_is_rejected() -> None:
    signature = sign(SMS_URL, dict(form("inbound_sms.txt")))
    padded = WebhookForm.from_body(raw("inbound_sms.txt") + b"&Extra=1")

    assert not verify(SMS_URL, padded, signature, AUTH_TOKEN)


def test_a_signature_for_another_url_is_rejected() -> None:
    body = form("status_delivered.txt")
    signature = sign(PUBLIC_BASE_URL + urls.MESSAGE_STATUS, dict(body))

    assert verify(PUBLIC_BASE_URL + urls.MESSAGE_STATUS, body, signature, AUTH_TOKEN)
    assert not verify(SMS_URL, body, signature, AUTH_TOKEN)
    assert not verify("https://evil.example.com" + urls.MESSAGE_STATUS, body, signature, AUTH_TOKEN)


def test_a_signature_over_the_url_with_or_without_its_default_port_is_accepted() -> None:
    """Twilio has signed both forms; the exact URL is checked first, the other still passes."""
    body = form("inbound_sms.txt")
    with_port = SMS_URL.replace("https://support.example.com/", "https://support.example.com:443/")
    assert with_port != SMS_URL

    assert verify(SMS_URL, body, sign(with_port, dict(body)), AUTH_TOKEN)
    assert verify(with_port, body, sign(SMS_URL, dict(body)), AUTH_TOKEN)
    assert not verify(SMS_URL, body, sign(with_port.replace(":443/", ":8443/"), dict(body)), AUTH_TOKEN)


def test_a_forged_signature_with_characters_outside_ascii_is_rejected_not_an_error() -> None:
    body = form("inbound_sms.txt")
    genuine = sign(SMS_URL, dict(body))
    assert not verify(SMS_URL, body, genuine[:-2] + "\u00e9=", AUTH_TOKEN)
    assert not verify(SMS_URL, body, "\u7b7e\u540d", AUTH_TOKEN)


def test_a_missing_signature_is_rejected() -> None:
    assert not verify(SMS_URL, form("inbound_sms.txt"), None, AUTH_TOKEN)
    assert not verify(SMS_URL, form("inbound_sms.txt"), "", AUTH_TOKEN)


def test_a_signature_made_with_another_token_is_rejected() -> None:
    body = form("inbound_sms.txt")
    forged = str(RequestValidator("not-the-token").compute_signature(SMS_URL, dict(body)))

    assert not verify(SMS_URL, body, forged, AUTH_TOKEN)


def test_an_empty_token_authenticates_nothing() -> None:
    body = form("inbound_sms.txt")
    signed_with_empty_key = str(RequestValidator("").compute_signature(SMS_URL, dict(body)))

    assert not verify(SMS_URL, body, signed_with_empty_key, "")


def test_signature_covers_repeated_fields() -> None:
    body = WebhookForm.from_body(b"MessageSid=SMx&Tag=a&Tag=b")

    assert verify(SMS_URL, body, sign(SMS_URL, body), AUTH_TOKEN)
    only_first = sign(SMS_URL, {"MessageSid": "SMx", "Tag": "a"})
    assert not verify(SMS_URL, body, only_first, AUTH_TOKEN)


def test_the_query_string_is_part_of_the_signed_url() -> None:
    body = form("recording_completed.txt")
    called = PUBLIC_BASE_URL + urls.RECORDING_STATUS + "?voicemail=1"
    signature = sign(called, dict(body))

    seen = url_seen(path=urls.RECORDING_STATUS, query_string="voicemail=1")
    assert seen == called
    assert verify(seen, body, signature, AUTH_TOKEN)
    assert not verify(url_seen(path=urls.RECORDING_STATUS), body, signature, AUTH_TOKEN)


def test_a_base_url_with_a_path_prefix() -> None:
    assert (
        url_seen(public_base_url="https://example.com/corridor/")
        == "https://example.com/corridor/webhooks/twilio/message"
    )


# --- behind a reverse proxy --------------------------------------------------------

FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "help.example.org",
    "X-Forwarded-Port": "443",
}


def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted() -> None:
    assert url_seen(headers=FORWARDED) == SMS_URL


def test_forwarded_headers_are_ignored_from_a_peer_that_is_not_the_trusted_proxy() -> None:
    assert url_seen(headers=FORWARDED, remote_addr="203.0.113.9", trusted_proxies=(PROXY,)) == (SMS_URL)


def test_forwarded_headers_are_honoured_from_the_trusted_proxy() -> None:
    body = form("inbound_sms.txt")
    called = "https://help.example.org/webhooks/twilio/message"
    signature = sign(called, dict(body))

    trusted = url_seen(headers=FORWARDED, trusted_proxies=(PROXY,))
    untrusted = url_seen(headers=FORWARDED)

    assert trusted == called
    assert verify(trusted, body, signature, AUTH_TOKEN)
    # The same request with the proxy not configured is checked against the base URL.
    assert not verify(untrusted, body, signature, AUTH_TOKEN)


def test_a_trusted_network_and_an_ipv4_mapped_peer() -> None:
    seen = url_seen(headers=FORWARDED, remote_addr="::ffff:10.0.0.7", trusted_proxies=("10.0.0.0/24",))
    assert seen == "https://help.example.org/webhooks/twilio/message"


def test_only_the_value_our_proxy_added_counts() -> None:
    # The client sent its own X-Forwarded-Host; our proxy appended the real one.
    headers = {
        "X-Forwarded-Host": "evil.example.com, help.example.org",
        "X-Forwarded-Proto": "https",
    }
    assert url_seen(headers=headers, trusted_proxies=(PROXY,)) == ("https://help.example.org/webhooks/twilio/message")


def test_a_non_default_forwarded_port_is_kept() -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "help.example.org",
        "X-Forwarded-Port": "8443",
    }
    assert url_seen(headers=headers, trusted_proxies=(PROXY,)) == (
        "https://help.example.org:8443/webhooks/twilio/message"
    )


def test_forwarded_prefix_from_the_trusted_proxy() -> None:
    headers = {**FORWARDED, "X-Forwarded-Prefix": "/corridor"}
    assert url_seen(headers=headers, trusted_proxies=(PROXY,)) == (
        "https://help.example.org/corridor/webhooks/twilio/message"
    )


@pytest.mark.parametrize("host", ["evil.example.com/path", "user@evil.example.com", "a b", "help.example.org:port"])
def test_a_malformed_forwarded_host_is_ignored(host: str) -> None:
    seen = url_seen(headers={"X-Forwarded-Host": host}, trusted_proxies=(PROXY,))
    assert seen == SMS_URL


# --- JSON bodies ---------------------------------------------------------------------


def test_json_body_signed_through_body_sha256() -> None:
    payload = json.dumps({"EventType": "onMessageAdded", "Body": "hello"}).encode()
    digest = hashlib.sha256(payload).hexdigest()
    called = f"{PUBLIC_BASE_URL}/webhooks/twilio/events?bodySHA256={digest}"
    signature = sign(called, {})

    assert verify(called, payload, signature, AUTH_TOKEN)
    changed = payload.replace(b"hello", b"HELLO")
    assert not verify(called, changed, signature, AUTH_TOKEN)


def test_json_body_without_body_sha256_is_rejected() -> None:
    payload = b'{"Body": "hello"}'
    called = f"{PUBLIC_BASE_URL}/webhooks/twilio/events"
    assert not verify(called, payload, sign(called, {}), AUTH_TOKEN)
