"""The customer's "Bonus card" page in Oscar's account area."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from oscar_loyalty import cards, earning, grades, keyset, ledger

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
