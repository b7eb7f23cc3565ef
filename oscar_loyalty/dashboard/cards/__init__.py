"""Dashboard area: the card list and a card's page, its actions, the bulk category
action and the mass accrual and debit of the list's filter."""
