"""Every idempotency key the package writes, one function per format.

A transfer's key says which operation it belongs to, so that a retried request, a replayed
signal or a redelivered Celery task finds the key recorded and counts once (``ledger``). The
formats are a contract with the ledgers shops already have: a key written last year must
come out byte for byte the same today, or a replay of last year's operation would count
twice. Change none of them; add a new one for a new operation.

    order:<number>:earn:<programme>           an order's points posted to a card (one
                                              accrual per card and order; the programme
                                              code tells the cards of one order apart)
    order:<number>:cancel:<programme>         those points taken back: the order cancelled
    order:<number>:line:<line id>:<programme> their share of one cancelled or refunded line
    order:<number>:hold[:<attempt>]           points held at checkout; the customer's next
                                              attempt after a failed payment is ``:2``...
    order:<number>:release[:<attempt>]        a hold given back (the attempt it releases)
    order:<number>:capture                    the held points spent: the order exists
    order:<number>:refund:all                 points paid for a cancelled order returned
    order:<number>:refund:<line id>           points paid for one refunded line returned
    job:<job id>:card:<card id>               a mass accrual or debit of one card; a rerun,
                                              a redelivered chunk or a pending accrual
                                              posted later finds it recorded
    import:<job id>:row:<row>                 one row of a card import applied
    <key>:undo                                that row's import undone
    replace:<old card id>                     a lost card's points and debt moved to its
                                              replacement (a double submit moves nothing)
    manual:<form token>                       a manager's adjustment (one per rendered form,
                                              so a double submit records one)
    <key>:repay                               the part of a credit that repaid the card's
                                              debt, written beside the credit under ``key``
    <key>:debt                                the part of a take-back the card could not
                                              pay, recorded as its debt

The reversal parts of an accrual (``cancel``, ``line:<line id>``) are also what
``Accrual.reversal_keys`` lists, so a line taken back once is never taken back again.
"""

CANCEL = "cancel"
EARN = "earn"
REPAY = ":repay"
DEBT = ":debt"
UNDO = ":undo"


def _order(order_number, what):
    return f"order:{order_number}:{what}"


def _attempt(key, attempt):
    return key if attempt == 1 else f"{key}:{attempt}"


# --- earning ---------------------------------------------------------------------------------


def line_reversal(line_id):
    """The reversal part for one order line (kept in ``Accrual.reversal_keys``)."""
    return f"line:{line_id}"


def accrual(order_number, what, program_code):
    """An order's accrual on a card of ``program_code``: ``what`` is ``EARN`` (posting it),
    ``CANCEL`` or a ``line_reversal`` (taking it back)."""
    return f"{_order(order_number, what)}:{program_code}"


def earn(order_number, program_code):
    """An order's points posted to its card of ``program_code``."""
    return accrual(order_number, EARN, program_code)


# --- paying ----------------------------------------------------------------------------------


def hold(order_number, attempt=1):
    """Points held at checkout for an order; a later attempt has its own key."""
    return _attempt(_order(order_number, "hold"), attempt)


def release(order_number, attempt=1):
    """A hold given back: ``attempt`` is that of the hold released."""
    return _attempt(_order(order_number, "release"), attempt)


def capture(order_number):
    """The order exists: its held points are spent."""
    return _order(order_number, "capture")


def order_refund(order_number):
    """The order was cancelled: every point paid for it comes back."""
    return _order(order_number, "refund:all")


def line_refund(order_number, line_id):
    """One line of the order was refunded: its share of the points paid comes back."""
    return _order(order_number, f"refund:{line_id}")


# --- jobs, imports, cards --------------------------------------------------------------------


def job_card(job_id, card_id):
    """A mass accrual or debit of one card (posted at once or from a pending accrual)."""
    return f"job:{job_id}:card:{card_id}"


def import_row(job_id, row):
    """One row of a card import applied."""
    return f"import:{job_id}:row:{row}"


def undo(key):
    """The reversal of the transfer under ``key`` when its import is undone."""
    return f"{key}{UNDO}"


def replacement(old_card_id):
    """All that a replaced card held, moved to its new card."""
    return f"replace:{old_card_id}"


def manual(token):
    """A manager's adjustment from one rendered form."""
    return f"manual:{token}"


# --- legs of one ledger operation ------------------------------------------------------------


def repay(key):
    """The leg of a credit under ``key`` that repaid the card's debt."""
    return f"{key}{REPAY}"


def debt(key):
    """The leg of a take-back under ``key`` that the card owes."""
    return f"{key}{DEBT}"


def is_repay(key):
    """Whether ``key`` names a ``repay`` leg."""
    return key.endswith(REPAY)
