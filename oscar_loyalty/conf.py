"""Package settings, each read from ``OSCAR_LOYALTY_<NAME>`` with the default below.

Read through this module (``conf.phone_region``) so that ``override_settings`` works in tests.
"""

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS = {
    # Region used to read phones written without a country code ("8 912 ..." in Russia).
    "PHONE_REGION": "RU",
    # Field of the user model that holds the customer's phone, if the shop has one; phone
    # cards are attached to the customer when it is saved.
    "USER_PHONE_FIELD": "phone",
    # Length of generated card numbers, check digit included (a programme may override it).
    "CARD_NUMBER_LENGTH": 13,
    # Whether card numbers end with a Luhn check digit (mistyped numbers are then refused).
    "CARD_NUMBER_CHECK_DIGIT": True,
    # Order statuses on which pending points are posted / voided and spent points returned.
    "COMPLETE_STATUSES": None,  # None: Oscar's last pipeline status that is not cancelled
    "CANCELLED_STATUSES": ("Cancelled",),
    # Line statuses that mean the line was cancelled or refunded (points reversed in proportion).
    "REFUNDED_LINE_STATUSES": ("Cancelled", "Refunded"),
    # Checkout holds older than this many minutes with no order are released.
    "HOLD_TIMEOUT_MINUTES": 120,
    # Excel import limits.
    "IMPORT_MAX_FILE_BYTES": 20 * 1024 * 1024,
    "IMPORT_MAX_UNCOMPRESSED_BYTES": 200 * 1024 * 1024,
    # Largest unpacked part of an .xlsx other than its sheet and shared strings (content
    # types, workbook, styles, relationships: kilobytes in real files).
    "IMPORT_MAX_PART_BYTES": 2 * 1024 * 1024,
    "IMPORT_MAX_ROWS": 200_000,
    # Rows of an Excel import applied by one Celery task (a few seconds of work; larger
    # chunks mean fewer statements and commits).
    "IMPORT_CHUNK_SIZE": 5000,
    # Rows of a bulk job handled by one Celery task.
    "JOB_CHUNK_SIZE": 1000,
    # A job with chunks left that has made no progress for this many minutes is resumed.
    "JOB_STALL_MINUTES": 10,
    # Alias in Django's STORAGES of the private storage for export files (without the alias,
    # a folder beside MEDIA_ROOT; see oscar_loyalty/storage.py).
    "EXPORT_STORAGE": "loyalty_exports",
    # Export files are deleted this many days after they were written.
    "EXPORT_RETENTION_DAYS": 7,
    # How long the periodic ``take_checkpoints`` waits for transactions that may still commit
    # a transfer below the checkpoint's id; past it the run leaves the checkpoints as they are.
    "CHECKPOINT_WAIT_SECONDS": 10,
    # Messages to customers (oscar_loyalty.notifications): the channels used, the SMS
    # backend (a dotted class path; None sends no SMS), the language they are written in
    # (None: LANGUAGE_CODE), the scheme of the links in them, and how failures are retried:
    # after RETRY_SECONDS, doubled each time, up to MAX_ATTEMPTS, then failed.
    "MESSAGE_CHANNELS": ("email", "sms", "site"),
    "SMS_BACKEND": None,
    # The SMS Aero backend's account (notifications.sms.SMSAeroBackend): EMAIL and API_KEY
    # (required), SIGN (the sender name, "SMS Aero" by default), URL and TIMEOUT (seconds).
    "SMS_AERO": {},
    "MESSAGE_LANGUAGE": None,
    "MESSAGE_URL_SCHEME": "https",
    "MESSAGE_RETRY_SECONDS": 60,
    "MESSAGE_MAX_ATTEMPTS": 5,
    # Queued messages sent by one run of the periodic ``send_due_messages``.
    "MESSAGE_BATCH": 500,
}


PREFIX = "OSCAR_LOYALTY_"
# Values read once: a setting the project leaves out costs an AttributeError inside Django
# each time it is read, and an import reads some once a row. ``override_settings`` (tests)
# sends ``setting_changed``, which forgets them.
_values = {}


def __getattr__(name):
    key = name.upper()
    if key not in DEFAULTS:
        raise AttributeError(name)
    try:
        return _values[key]
    except KeyError:
        value = _values[key] = getattr(settings, PREFIX + key, DEFAULTS[key])
        return value


@receiver(setting_changed)
def _forget(setting, **kwargs):
    if setting.startswith(PREFIX):
        _values.pop(setting[len(PREFIX) :], None)
