from django.apps import apps
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # The loyalty dashboard goes before Oscar's URLs so that /dashboard/ does not swallow it.
    path("dashboard/loyalty/", include(apps.get_app_config("oscar_loyalty_dashboard").urls[0])),
    path("", include(apps.get_app_config("oscar_loyalty").urls[0])),
    path("", include(apps.get_app_config("oscar").urls[0])),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
