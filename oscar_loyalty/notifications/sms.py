"""SMS backends: a class named in ``OSCAR_LOYALTY_SMS_BACKEND`` with ``send(phone, text)``.

``phone`` is digits with the country code (``79123456789``). ``send`` returns the gateway's
id of the message and raises ``SMSError`` when the gateway refuses it or cannot be reached;
the message then stays queued and is tried again (``sending``).
"""

import logging

from django.utils.module_loading import import_string

from oscar_loyalty import conf

logger = logging.getLogger(__name__)


class SMSError(Exception):
    """The gateway did not take the message."""


class BaseBackend:
    def send(self, phone, text):
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Writes each SMS to the log (``oscar_loyalty.sms``): development and demos."""

    def send(self, phone, text):
        logging.getLogger("oscar_loyalty.sms").info("SMS to +%s: %s", phone, text)
        return ""


def get_backend():
    return import_string(conf.sms_backend)()
