"""The SMS Aero backend against a local fake of the gateway: what it sends, what it returns,
and that every way of not taking the SMS raises ``SMSError`` saying what went wrong."""

import base64
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation

from oscar_loyalty.notifications import sms
from tests.sms_gateway import API_KEY, EMAIL

PHONE = "79123456789"


def test_sends_number_text_and_sign_with_basic_auth_and_returns_the_gateway_id(sms_aero):
    gateway_id = sms.SMSAeroBackend().send(PHONE, "+150 points. Balance: 1,150.")

    assert gateway_id == "7001"
    (request,) = sms_aero.requests
    assert request["path"] == "/v2/sms/send"
    assert request["auth"] == (EMAIL, API_KEY)
    assert request["body"] == {
        "number": PHONE,
        "text": "+150 points. Balance: 1,150.",
        "sign": "Shop",
    }


def test_russian_text_arrives_intact(sms_aero):
    sms.SMSAeroBackend().send(PHONE, "+150 баллов. Баланс: 1 150.")

    assert sms_aero.sent[0]["text"] == "+150 баллов. Баланс: 1 150."


def test_sign_defaults_to_the_gateways_free_sender_name(sms_aero, settings):
    settings.OSCAR_LOYALTY_SMS_AERO = {**sms_aero.settings(), "SIGN": ""}

    sms.SMSAeroBackend().send(PHONE, "Hello")

    assert sms_aero.sent[0]["sign"] == "SMS Aero"


def test_get_backend_builds_the_backend_named_in_the_setting(sms_aero):
    assert sms.get_backend().send(PHONE, "Hello") == "7001"
    assert len(sms_aero.sent) == 1


def test_a_refusal_raises_with_the_gateways_message(sms_aero):
    sms_aero.refuse("Not enough money on the balance")

    with pytest.raises(sms.SMSError, match="refused the SMS: Not enough money on the balance"):
        sms.SMSAeroBackend().send(PHONE, "Hello")
    assert sms_aero.sent == []


def test_an_http_error_raises_with_the_status_and_what_the_gateway_said(sms_aero):
    sms_aero.fail(status=503, message="Service temporarily unavailable")

    with pytest.raises(sms.SMSError, match="HTTP 503: Service temporarily unavailable"):
        sms.SMSAeroBackend().send(PHONE, "Hello")


def test_a_gateway_that_is_down_is_told_apart_from_a_refusal(sms_aero):
    sms_aero.fail(status=502, message="Bad gateway")
    with pytest.raises(sms.GatewayUnavailable):
        sms.SMSAeroBackend().send(PHONE, "Hello")

    sms_aero.fail(status=400, message="Invalid number")
    with pytest.raises(sms.SMSError) as error:
        sms.SMSAeroBackend().send(PHONE, "Hello")
    assert not isinstance(error.value, sms.GatewayUnavailable)


def test_a_validation_error_names_the_fields(sms_aero):
    with pytest.raises(sms.SMSError, match=r"HTTP 400: Validation error\. \(number:"):
        sms.SMSAeroBackend().send("", "Hello")


def test_wrong_credentials_raise_and_the_api_key_is_never_in_the_error_or_the_log(
    sms_aero, settings, caplog
):
    secret = "wrong-secret-key-31337"
    settings.OSCAR_LOYALTY_SMS_AERO = {**sms_aero.settings(), "API_KEY": secret}
    caplog.set_level(logging.DEBUG)

    with pytest.raises(sms.SMSError, match="HTTP 401: Your credentials are incorrect") as error:
        sms.SMSAeroBackend().send(PHONE, "Hello")

    assert sms_aero.requests[0]["auth"] == (EMAIL, secret)
    encoded = base64.b64encode(f"{EMAIL}:{secret}".encode()).decode()
    for text in (str(error.value), caplog.text):
        assert secret not in text and encoded not in text


def test_an_answer_that_is_not_json_raises(sms_aero):
    sms_aero.answer_raw(b"<html><body>502 Bad Gateway</body></html>")

    with pytest.raises(sms.SMSError, match="not what its API returns: <html>"):
        sms.SMSAeroBackend().send(PHONE, "Hello")


def test_json_without_success_raises(sms_aero):
    sms_aero.answer_raw(b'{"result": "ok"}', "application/json")

    with pytest.raises(sms.SMSError, match="not what its API returns"):
        sms.SMSAeroBackend().send(PHONE, "Hello")


def test_a_gateway_that_hangs_raises_after_the_timeout(sms_aero, settings):
    settings.OSCAR_LOYALTY_SMS_AERO = sms_aero.settings(TIMEOUT=0.3)
    sms_aero.hang()

    with pytest.raises(sms.GatewayUnavailable, match="did not answer within 0.3 seconds"):
        sms.SMSAeroBackend().send(PHONE, "Hello")


def test_a_gateway_that_cannot_be_reached_raises(settings):
    with FakeStopped() as url:
        settings.OSCAR_LOYALTY_SMS_AERO = {"EMAIL": EMAIL, "API_KEY": API_KEY, "URL": url}

        with pytest.raises(sms.GatewayUnavailable, match="could not be reached"):
            sms.SMSAeroBackend().send(PHONE, "Hello")


def test_a_redirect_is_not_followed_with_the_credentials(sms_aero, settings):
    settings.OSCAR_LOYALTY_SMS_AERO = sms_aero.settings(
        URL=sms_aero.url.replace("/v2/sms/send", "/redirect")
    )

    with pytest.raises(sms.SMSError, match="HTTP 302"):
        sms.SMSAeroBackend().send(PHONE, "Hello")
    assert [r["path"] for r in sms_aero.requests] == ["/redirect"]


def test_missing_credentials_are_a_configuration_error(settings):
    settings.OSCAR_LOYALTY_SMS_AERO = {"EMAIL": EMAIL}

    with pytest.raises(ImproperlyConfigured, match="EMAIL and API_KEY"):
        sms.SMSAeroBackend()


class FakeStopped:
    """The address of a port nothing listens on."""

    def __enter__(self):
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        return f"http://127.0.0.1:{port}/v2/sms/send"

    def __exit__(self, *exc):
        self.socket.close()


def test_the_error_is_in_the_active_language(sms_aero):
    sms_aero.refuse("Not enough money on the balance")

    with translation.override("ru"), pytest.raises(sms.SMSError) as error:
        sms.SMSAeroBackend().send(PHONE, "Hello")

    assert str(error.value) == "SMS Aero не принял SMS: Not enough money on the balance"
