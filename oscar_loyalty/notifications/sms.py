"""SMS backends: a class named in ``OSCAR_LOYALTY_SMS_BACKEND`` with ``send(phone, text)``.

``phone`` is digits with the country code (``79123456789``). ``send`` returns the gateway's
id of the message and raises ``SMSError`` when the gateway refuses it, or its subclass
``GatewayUnavailable`` when the gateway cannot be reached (the rest of the batch then waits);
the message stays queued and is tried again (``sending``).
"""

import base64
import http.client
import json
import logging
import urllib.error
import urllib.request

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from oscar_loyalty import conf

logger = logging.getLogger(__name__)


class SMSError(Exception):
    """The gateway did not take the message."""


class GatewayUnavailable(SMSError):
    """The gateway could not be reached, did not answer in time or is down (HTTP 5xx): the
    batch's other SMS are not tried, so a dead gateway costs one timeout, not one a message."""


class BaseBackend:
    def send(self, phone, text):
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Writes each SMS to the log (``oscar_loyalty.sms``): development and demos."""

    def send(self, phone, text):
        logging.getLogger("oscar_loyalty.sms").info("SMS to +%s: %s", phone, text)
        return ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would hand the API key to another address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class SMSAeroBackend(BaseBackend):
    """SMS Aero's HTTP API v2 (``POST /v2/sms/send``), configured by
    ``OSCAR_LOYALTY_SMS_AERO = {"EMAIL", "API_KEY", "SIGN", "URL", "TIMEOUT"}``.

    The account's e-mail and API key go as HTTP basic auth, never into the log or an error.
    A refusal (``success: false``), an HTTP error, a timeout or an answer that is not the
    gateway's JSON raises ``SMSError`` with what the gateway said (``GatewayUnavailable``
    when it is unreachable, silent or answers HTTP 5xx).
    """

    URL = "https://gate.smsaero.ru/v2/sms/send"
    SIGN = "SMS Aero"  # the sender name every account may use
    TIMEOUT = 10  # seconds to connect, and then to wait for the answer
    ANSWER_LIMIT = 64 * 1024  # bytes read of an answer: a send's answer is a few hundred

    def __init__(self, **options):
        options = {**(conf.sms_aero or {}), **{k.upper(): v for k, v in options.items()}}
        self.email, self.api_key = options.get("EMAIL"), options.get("API_KEY")
        if not self.email or not self.api_key:
            raise ImproperlyConfigured(
                _("OSCAR_LOYALTY_SMS_AERO needs the account's EMAIL and API_KEY.")
            )
        self.sign = options.get("SIGN") or self.SIGN
        self.url = options.get("URL") or self.URL
        self.timeout = float(options.get("TIMEOUT") or self.TIMEOUT)
        self.opener = urllib.request.build_opener(_NoRedirects)

    def _request(self, phone, text):
        credentials = f"{self.email}:{self.api_key}".encode()
        body = json.dumps({"number": str(phone), "text": text, "sign": self.sign})
        return urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )

    def send(self, phone, text):
        try:
            with self.opener.open(self._request(phone, text), timeout=self.timeout) as answer:
                raw = answer.read(self.ANSWER_LIMIT)
        except urllib.error.HTTPError as error:
            said = _said(_parse(_read(error, self.ANSWER_LIMIT))) or error.reason
            refusal = GatewayUnavailable if error.code >= 500 else SMSError
            raise refusal(
                _("SMS Aero answered HTTP %(status)s: %(said)s")
                % {"status": error.code, "said": said}
            ) from None
        except TimeoutError:
            raise GatewayUnavailable(
                _("SMS Aero did not answer within %(seconds)s seconds; the SMS may still arrive.")
                % {"seconds": f"{self.timeout:g}"}
            ) from None
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            if isinstance(reason, TimeoutError):
                reason = _("timed out")
            raise GatewayUnavailable(_("SMS Aero could not be reached: %s") % reason) from None
        answer = _parse(raw)
        if not isinstance(answer, dict) or "success" not in answer:
            raise SMSError(
                _("SMS Aero's answer is not what its API returns: %s")
                % raw[:200].decode("utf-8", "replace")
            )
        if answer["success"] is not True:
            raise SMSError(
                _("SMS Aero refused the SMS: %s") % (_said(answer) or _("no reason given"))
            )
        data = answer.get("data")
        if isinstance(data, list):
            data = data[0] if data else None
        return str(data.get("id", "")) if isinstance(data, dict) else ""


def _read(error, limit):
    """The body of an HTTP error answer, if it has one."""
    try:
        with error:
            return error.read(limit)
    except (OSError, http.client.HTTPException, AttributeError):
        return b""


def _parse(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def _said(answer):
    """The gateway's own words in an answer: ``message``, and the fields it names."""
    if not isinstance(answer, dict):
        return ""
    said = str(answer.get("message") or "")
    data = answer.get("data")
    if isinstance(data, dict) and answer.get("success") is False:
        details = "; ".join(f"{name}: {value}" for name, value in data.items())
        said = f"{said} ({details})" if said and details else said or details
    return said


def get_backend():
    return import_string(conf.sms_backend)()
