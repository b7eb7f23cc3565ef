"""A long history for one card, made in bulk: orders of its customer, each with a posted
accrual, a captured hold and the three transfers they leave (earn, hold, capture)."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from oscar.core.loading import get_model

from oscar_loyalty import ledger

Accrual = get_model("oscar_loyalty", "Accrual")
Hold = get_model("oscar_loyalty", "Hold")
Order = get_model("order", "Order")
Transfer = get_model("oscar_loyalty", "Transfer")

D = Decimal


# Order ``H<n>`` is placed ``n`` minutes after this, so later batches are newer.
EPOCH = timezone.now() - timedelta(days=365)


def grow(card, count, start=0):
    """``count`` more orders (numbers ``H<start>`` on) of the card's customer."""
    numbers = [f"H{start + i:06d}" for i in range(count)]
    Order.objects.bulk_create(
        Order(
            number=number,
            user_id=card.user_id,
            currency="RUB",
            total_incl_tax=D("100.00"),
            total_excl_tax=D("100.00"),
            date_placed=EPOCH + timedelta(minutes=start + i),
        )
        for i, number in enumerate(numbers)
    )
    Accrual.objects.bulk_create(
        Accrual(
            card=card,
            order_number=number,
            base=D("100.00"),
            percent=D("3"),
            points=D("3.00"),
            status=Accrual.POSTED,
            created=EPOCH + timedelta(minutes=start + i),
        )
        for i, number in enumerate(numbers)
    )
    Hold.objects.bulk_create(
        Hold(
            card=card,
            order_number=number,
            points=D("1.00"),
            money=D("1.00"),
            status=Hold.CAPTURED,
            created=EPOCH + timedelta(minutes=start + i),
        )
        for i, number in enumerate(numbers)
    )
    issued = ledger.system_account(card.program, ledger.ISSUED).pk
    held = ledger.system_account(card.program, ledger.HELD).pk
    redeemed = ledger.system_account(card.program, ledger.REDEEMED).pk
    account = card.account_id
    legs = []
    for number in numbers:
        legs += [
            (f"order:{number}:earn", Transfer.EARN, issued, account, "3.00", card.pk, number),
            (f"order:{number}:hold", Transfer.HOLD, account, held, "1.00", card.pk, number),
            (f"order:{number}:capture", Transfer.CAPTURE, held, redeemed, "1.00", card.pk, number),
        ]
    ledger._post_legs(legs, fields=("order_number",))
    return numbers
