"""The phone protocol's error codes: one enumeration carrying each code's HTTP status
(phone-protocol.md, "Errors"), and the XML body every refusal carries."""

from __future__ import annotations

from phones.choices import PhoneError
from phones.errors import phone_error


def test_every_code_has_the_status_the_spec_gives_it() -> None:
    assert {code.value: code.status for code in PhoneError} == {
        "InvalidRequest": 400,
        "AnonymousNotSupported": 401,
        "InvalidCredentials": 401,
        "NoSignedInUser": 403,
        "NotFound": 404,
        "LengthRequired": 411,
        "TooLarge": 413,
        "UnsupportedLogType": 415,
        "TooManyRequests": 429,
        "QuotaExceeded": 507,
        "Busy": 503,
    }


def test_a_code_is_its_word_wherever_it_is_written() -> None:
    assert PhoneError.TOO_LARGE == "TooLarge"
    assert f"{PhoneError.TOO_LARGE}: too big" == "TooLarge: too big"  # the audit's message


def test_the_error_body_escapes_the_message_and_carries_the_codes_status() -> None:
    response = phone_error(PhoneError.TOO_MANY_REQUESTS, "a < b & c", retry_after=60)
    assert (response.status_code, response["Content-Type"], response["Retry-After"]) == (
        429,
        "text/xml; charset=utf-8",
        "60",
    )
    assert response.content == (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b"<Error><Code>TooManyRequests</Code><Message>a &lt; b &amp; c</Message></Error>"
    )
    assert "WWW-Authenticate" not in response


def test_only_missing_credentials_get_the_basic_challenge() -> None:
    challenged = phone_error(PhoneError.ANONYMOUS_NOT_SUPPORTED, "credentials are required")
    assert (challenged.status_code, challenged["WWW-Authenticate"]) == (
        401,
        'Basic realm="Device Update"',
    )
    refused = phone_error(PhoneError.INVALID_CREDENTIALS, "the credentials are not valid")
    assert (refused.status_code, "WWW-Authenticate" in refused) == (401, False)
    assert "Retry-After" not in refused
