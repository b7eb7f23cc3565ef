"""The fork's card list shows each customer's e-mail in a column of its own."""

from django_tables2 import Column

from oscar_loyalty.dashboard.cards import tables


class CardTable(tables.CardTable):
    email = Column(accessor="user__email", verbose_name="Customer's e-mail", orderable=False)

    class Meta(tables.CardTable.Meta):
        pass
