"""A local stand-in for SMS Aero's HTTP API v2, for the SMS backend's tests.

``FakeSMSAero`` serves ``POST /v2/sms/send`` on 127.0.0.1 in a thread, checks basic auth,
records every request and answers as the gateway does: ``{"success", "data", "message"}``.
A test tells it to misbehave: ``fail(times)`` (HTTP errors), ``refuse(message)``
(``success: false``), ``hang()`` (no answer until stopped), ``answer_raw(bytes)`` (not JSON).
The ``sms_aero`` fixture starts one and points ``OSCAR_LOYALTY_SMS_AERO`` at it.
"""

import base64
import binascii
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

EMAIL = "shop@example.com"
API_KEY = "fake-api-key-5f0c9e"
PATH = "/v2/sms/send"


class FakeSMSAero:
    def __init__(self, email=EMAIL, api_key=API_KEY):
        self.email, self.api_key = email, api_key
        self.requests = []  # every request: {"path", "auth", "headers", "body", "raw"}
        self.sent = []  # the bodies of the SMS it accepted
        self._failures = []  # (status, message) answered to the next requests, in order
        self._refusal = None
        self._raw = None
        self._hanging = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(7001)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # --- control -----------------------------------------------------------------------

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def settings(self, **extra):
        """``OSCAR_LOYALTY_SMS_AERO`` for this server."""
        values = {"EMAIL": self.email, "API_KEY": self.api_key, "SIGN": "Shop", "URL": self.url}
        values["TIMEOUT"] = 2
        return {**values, **extra}

    def fail(self, times=1, status=503, message="Service temporarily unavailable"):
        """Answer the next ``times`` requests with HTTP ``status`` (a JSON error body)."""
        with self._lock:
            self._failures.extend([(status, message)] * times)

    def refuse(self, message="Not enough money on the balance"):
        """Answer ``success: false`` with ``message`` until ``recover()``."""
        self._refusal = message

    def answer_raw(self, raw, content_type="text/html"):
        """Answer ``raw`` bytes (not the gateway's JSON) until ``recover()``."""
        self._raw = (raw, content_type)

    def hang(self):
        """Answer nothing until ``recover()`` or the server stops."""
        self._release.clear()
        self._hanging.set()

    def recover(self):
        with self._lock:
            self._failures.clear()
        self._refusal = self._raw = None
        self._hanging.clear()
        self._release.set()

    def forget(self):
        """Forget the requests seen so far (after a test's setup)."""
        with self._lock:
            self.requests.clear()
            self.sent.clear()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- answering (in the server's threads) ---------------------------------------------

    def _answer(self, request):
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
        if request["auth"] != (self.email, self.api_key):
            return 401, {
                "success": False,
                "data": None,
                "message": "Your credentials are incorrect",
            }
        if self._hanging.is_set():
            self._release.wait(30)
            return 504, {"success": False, "data": None, "message": "Too late"}
        if failure is not None:
            status, message = failure
            return status, {"success": False, "data": None, "message": message}
        if self._raw is not None:
            return 200, self._raw
        if self._refusal is not None:
            return 200, {"success": False, "data": None, "message": self._refusal}
        body = request["body"] or {}
        if not body.get("number") or not body.get("text") or not body.get("sign"):
            data = {name: [f"{name} is required"] for name in ("number", "text", "sign")}
            return 400, {"success": False, "data": data, "message": "Validation error."}
        with self._lock:
            self.sent.append(body)
            number = next(self._ids)
        data = {
            "id": number,
            "from": body["sign"],
            "number": body["number"],
            "text": body["text"],
            "status": 8,
            "extendStatus": "moderation",
            "channel": "FREE SIGN",
            "cost": "4.99",
        }
        return 200, {"success": True, "data": data, "message": None}


def _handler(gateway):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = {
                "path": self.path,
                "auth": _basic_auth(self.headers.get("Authorization", "")),
                "headers": dict(self.headers),
                "body": _body(raw, self.headers.get("Content-Type", "")),
                "raw": raw,
            }
            if self.path == "/redirect":  # a gateway moved: the client must not follow
                gateway.requests.append(request)
                self.send_response(302)
                self.send_header("Location", gateway.url)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path != PATH:
                status, answer = 404, {"success": False, "data": None, "message": "Not found"}
            else:
                status, answer = gateway._answer(request)
            if isinstance(answer, tuple):
                payload, content_type = answer
            else:
                payload, content_type = json.dumps(answer).encode(), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting (a hang)
                pass

        def log_message(self, format, *args):
            pass

    return Handler


def _basic_auth(header):
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        email, _, key = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return email, key


def _body(raw, content_type):
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return {name: values[-1] for name, values in parse_qs(raw.decode()).items()}


@pytest.fixture
def sms_aero(settings):
    """A running fake gateway, with SMS sent through the SMS Aero backend to it."""
    with FakeSMSAero() as gateway:
        settings.OSCAR_LOYALTY_SMS_AERO = gateway.settings()
        settings.OSCAR_LOYALTY_SMS_BACKEND = "oscar_loyalty.notifications.sms.SMSAeroBackend"
        yield gateway
