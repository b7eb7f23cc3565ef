"""Test settings: the sandbox shop, made fast and self-contained.

Environment (see Makefile): DATABASE_URL picks the database (SQLite in memory by default),
CELERY_BROKER_URL a broker for the `redis` tests. Tasks run eagerly unless
LOYALTY_TEST_CELERY_WORKER=1, for a run against a real worker.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from sandbox.settings import *

SECRET_KEY = "tests-only"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Uploaded files and thumbnails stay in memory; nothing is written under sandbox/media.
# Export files go to a private folder of this test process, removed at exit.
EXPORT_ROOT = tempfile.mkdtemp(prefix="oscar-loyalty-test-exports-")
atexit.register(shutil.rmtree, EXPORT_ROOT, ignore_errors=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "loyalty_exports": {
        "BACKEND": "oscar_loyalty.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": EXPORT_ROOT},
    },
}
MEDIA_ROOT = str(Path(tempfile.gettempdir()) / "oscar-loyalty-test-media")

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A throwaway Whoosh index per test process, filled only when a test asks for it
# (`manage.py update_index`, which load_demo runs): saving a product does not index it.
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": tempfile.mkdtemp(prefix="oscar-loyalty-test-whoosh-"),
    },
}
atexit.register(shutil.rmtree, HAYSTACK_CONNECTIONS["default"]["PATH"], ignore_errors=True)
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.BaseSignalProcessor"

CELERY_TASK_ALWAYS_EAGER = os.environ.get("LOYALTY_TEST_CELERY_WORKER") != "1"
CELERY_TASK_EAGER_PROPAGATES = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"oscar.checkout": {"handlers": ["null"], "propagate": False}},
}
