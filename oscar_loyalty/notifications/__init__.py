"""Messages to customers about their points, built on Oscar's communications.

What happens (an event of ``events``) is recorded as a ``Message`` per channel in the
transaction that caused it (``records``), under a key derived from the cause, and sent after
commit by a Celery task (``sending``): e-mail through Django's mail backends, SMS through the
backend named in ``OSCAR_LOYALTY_SMS_BACKEND`` (``sms``), and an Oscar ``Notification`` in the
customer's account inbox. Texts are Oscar ``CommunicationEventType``s that managers edit in the
dashboard, with the package's templates as fallback files.
"""
