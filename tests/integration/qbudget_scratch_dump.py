"""Scratch (qbudget engineer): dump SQL of place order, earning vs paying. Deleted after."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.integration import test_checkout_queries as q
from tests.integration.checkout_support import TOWELS, apply_points, card_with_points, customer, load_shop, make_program, to_payment_step

urlpatterns = q.urlpatterns
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(q.__name__)]


def place(client, user, pay, preview, points=None):
    to_payment_step(client, user, TOWELS)
    if points:
        apply_points(client, points)
    client.get(reverse(pay)); client.get(reverse(preview))
    with CaptureQueriesContext(connection) as c:
        r = client.post(reverse(preview), {"action": "place_order"})
    assert r.status_code == 302
    return [x["sql"] for x in c.captured_queries]


def test_dump(client):
    load_shop()
    anna = customer()
    card_with_points(make_program(), anna, 5000)
    for _ in range(2):
        e = place(client, anna, "plain-pay", "plain-preview")
        p = place(client, anna, "checkout:payment-details", "checkout:preview", points="100")
    import os
    tag = os.environ.get("DUMPTAG", "x")
    open(f"/tmp/qb/earning-{tag}.sql", "w").write("\n".join(s.replace("\n", " ")[:260] for s in e) + "\n")
    open(f"/tmp/qb/paying-{tag}.sql", "w").write("\n".join(s.replace("\n", " ")[:260] for s in p) + "\n")
    print(len(e), len(p))
