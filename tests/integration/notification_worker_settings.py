"""Settings of the Celery worker that ``test_notifications_postgres`` starts: the sandbox's,
with the tasks the worker itself sends (a chunk's messages) on the test's own queue, and
e-mail written to files the test reads (locmem mail lives in one process only)."""

import os

from sandbox.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["LOYALTY_TEST_QUEUE"]
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["LOYALTY_TEST_MAIL_DIR"]
