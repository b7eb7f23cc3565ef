"""Views of the message log: the filtered list, newest first, and resending failed messages.

The list pages by keyset (``oscar_loyalty.keyset``): a log grows by every customer's every
change, and neither an OFFSET nor a COUNT of it would stay fast.
"""

from django.contrib import messages
from django.db import transaction
from django.http import QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import TemplateView, View
from oscar.core.loading import get_model

from oscar_loyalty import conf, keyset
from oscar_loyalty.dashboard.mixins import TEMPLATES
from oscar_loyalty.loading import get_class
from oscar_loyalty.notifications import sending

Message = get_model("oscar_loyalty", "Message")

MessageFilter = get_class("dashboard.notifications.filters", "MessageFilter")
filter_query = get_class("dashboard.notifications.filters", "filter_query")

LOG_PAGE = 50


def log_url(query=""):
    return reverse("loyalty-message-list") + (f"?{query}" if query else "")


def filtered(query):
    """The messages a log querystring selects, or ``None`` if its filter is invalid."""
    data = QueryDict(query)
    filterset = MessageFilter(data or None, queryset=Message.objects.all())
    if filterset.is_bound and not filterset.is_valid():
        return None, filterset
    return filterset.qs, filterset


class MessageListView(TemplateView):
    """Every message, newest first, with its status and last error; failed ones can be
    sent again from here."""

    template_name = TEMPLATES + "message_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = filter_query(self.request.GET)
        rows, filterset = filtered(query)
        listed = (rows if rows is not None else Message.objects.none()).select_related(
            "card", "user"
        )
        context.update(
            filter=filterset,
            form=filterset.form,
            page_obj=keyset.page(
                listed.order_by("-id"),
                LOG_PAGE,
                before=self.request.GET.get("before"),
                after=self.request.GET.get("after"),
                date="id",  # recorded in id order; the primary key serves the log
            ),
            query=query,
            page_query=f"{query}&" if query else "",
            filter_valid=rows is not None,
            card_shown=getattr(filterset, "card_shown", None),
            job_shown=getattr(filterset, "job_shown", None),
            narrowed=bool(query),
        )
        return context


def resend(messages_to_send):
    """Queue the failed ones of ``messages_to_send`` again, a task per batch of
    ``OSCAR_LOYALTY_MESSAGE_BATCH`` (as the periodic sending does); returns how many."""
    ids = list(
        messages_to_send.filter(status=Message.FAILED).order_by("pk").values_list("pk", flat=True)
    )
    queued, size = 0, conf.message_batch
    with transaction.atomic():
        for start in range(0, len(ids), size):
            queued += len(sending.resend(Message.objects.filter(pk__in=ids[start : start + size])))
    return queued


class MessageResendView(View):
    """POST ``message=<id>`` to send one failed message again, or ``all=1`` to send again
    every failed message of the log's filter (the posted ``query``). Others are left alone."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        query = filter_query(QueryDict(request.POST.get("query", "")))
        back = redirect(log_url(query))
        if request.POST.get("message"):
            pk = keyset.cursor(request.POST["message"])
            queued = resend(Message.objects.filter(pk=pk)) if pk else 0
            if not queued:
                messages.info(request, _("This message has not failed: nothing was resent."))
                return back
        else:
            rows, _filterset = filtered(query)
            if rows is None:
                messages.error(request, _("The log's filter has errors; fix it first."))
                return back
            queued = resend(rows)
            if not queued:
                messages.info(
                    request, _("No failed messages match the filter: nothing was resent.")
                )
                return back
        text = ngettext(
            "%(count)s failed message queued to be sent again.",
            "%(count)s failed messages queued to be sent again.",
            queued,
        )
        messages.success(request, text % {"count": queued})
        return back
