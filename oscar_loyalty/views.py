"""The customer's "Bonus card" page in Oscar's account area."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View
from oscar.core.loading import get_model

from oscar_loyalty import cards, earning, grades, keyset, ledger
from oscar_loyalty.loading import get_class

Card = get_model("oscar_loyalty", "Card")
ConsentForm = get_class("forms", "ConsentForm")

HISTORY_PAGE = 50


class CardListView(LoginRequiredMixin, TemplateView):
    template_name = "oscar_loyalty/account/cards.html"
    active_tab = "loyalty"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        panels = []
        for card in cards.cards_of(self.request.user):
            nxt, needed = grades.next_grade(card)
            pending = earning.pending_points(card)
            history = keyset.page(
                ledger.history(card, customer_view=True),
                HISTORY_PAGE,
                before=self.request.GET.get(f"before-{card.pk}"),
                after=self.request.GET.get(f"after-{card.pk}"),
            )
            panels.append(
                {
                    "card": card,
                    "next_grade": nxt,
                    "spend_needed": needed,
                    "pending": pending,
                    "pending_total": sum(p for _, p, _ in pending),
                    "history": history,
                }
            )
        context["panels"] = panels
        return context


class ConsentView(LoginRequiredMixin, View):
    """The card's owner switches messages about their points on or off (POST only: a link
    or a prefetch never changes it). Recorded as changed by the customer, now."""

    http_method_names = ["post"]

    def post(self, request, pk):
        card = get_object_or_404(Card, pk=pk, user=request.user)  # another's card: 404
        form = ConsentForm(request.POST)
        if form.is_valid():
            agrees = form.cleaned_data["consent"]
            cards.set_consent(card, agrees)
            if agrees:
                text = _("Messages about your points on the card %(number)s are now on.")
            else:
                text = _("Messages about your points on the card %(number)s are now off.")
            messages.success(request, text % {"number": card.number})
        else:
            messages.error(request, _("Choose whether you want messages about your points."))
        return redirect(reverse("loyalty-account-cards") + f"#card-{card.number}")
