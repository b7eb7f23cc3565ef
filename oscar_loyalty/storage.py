"""Where export files live: a storage of their own whose files have no URL.

Exports hold customers' data (card numbers, phones, names, internal notes), so they are never
written to public media. ``OSCAR_LOYALTY_EXPORT_STORAGE`` names an alias of Django's
``STORAGES``; without that alias the files go to a private folder beside ``MEDIA_ROOT``. The
dashboard's ``loyalty-export-download`` view serves them to managers allowed to see the data.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, InvalidStorageError, storages
from django.utils.deconstruct import deconstructible

from oscar_loyalty import conf

DEFAULT_ALIAS = conf.DEFAULTS["EXPORT_STORAGE"]


def default_location():
    """``<MEDIA_ROOT>-private/oscar_loyalty``: beside the public media folder, never in it."""
    if not settings.MEDIA_ROOT:
        raise ImproperlyConfigured(
            f"Set MEDIA_ROOT or add a {DEFAULT_ALIAS!r} storage to STORAGES for the loyalty "
            "exports (OSCAR_LOYALTY_EXPORT_STORAGE)."
        )
    media = Path(settings.MEDIA_ROOT).resolve()
    return media.with_name(media.name + "-private") / "oscar_loyalty"


@deconstructible(path="oscar_loyalty.storage.PrivateFileSystemStorage")
class PrivateFileSystemStorage(FileSystemStorage):
    """Files on disk that no URL reaches.

    ``FileSystemStorage(base_url=None)`` would fall back to ``MEDIA_URL`` and its location to
    ``MEDIA_ROOT``; this one has no URL (``url()`` raises) and defaults to
    ``default_location()``.
    """

    def __init__(self, location=None, **kwargs):
        kwargs.pop("base_url", None)
        super().__init__(location=location or default_location(), **kwargs)

    @property
    def base_url(self):
        return None


def export_storage():
    """The storage of export files (``Job.result_file``)."""
    alias = conf.export_storage
    try:
        return storages[alias]
    except InvalidStorageError:
        if alias != DEFAULT_ALIAS:
            raise
    return PrivateFileSystemStorage()


def export_name(fmt):
    """A file name nobody can guess; the readable name is sent as the download's name."""
    return f"{secrets.token_urlsafe(24)}.{fmt}"


@checks.register(checks.Tags.security)
def check_export_storage(app_configs=None, **kwargs):
    """System check: export files must not get a URL (e.g. a storage serving public media)."""
    try:
        export_storage().url(export_name("xlsx"))
    except (ValueError, NotImplementedError):
        return []
    return [
        checks.Warning(
            "The storage of loyalty exports (OSCAR_LOYALTY_EXPORT_STORAGE) gives files a URL; "
            "exports hold customers' data and should be reachable only through the dashboard.",
            hint="Use oscar_loyalty.storage.PrivateFileSystemStorage or a storage without "
            "public URLs; silence oscar_loyalty.W003 if its URLs are signed and short-lived.",
            id="oscar_loyalty.W003",
        )
    ]
