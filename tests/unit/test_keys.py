"""Every idempotency key comes out exactly as it was written before ``keys`` existed.

The strings are spelled out on purpose: a key format is the contract with the ledgers shops
already have. A replay of an operation recorded last year (a redelivered task, a signal sent
again, an import row applied twice) is recognised only if today's code writes the very same
key; a format that changed by one character would count that operation a second time.
"""

import pytest

from oscar_loyalty import keys

FORMATS = [
    (keys.earn("100042", "main"), "order:100042:earn:main"),
    (keys.accrual("100042", keys.EARN, "main"), "order:100042:earn:main"),
    (keys.accrual("100042", keys.CANCEL, "main"), "order:100042:cancel:main"),
    (keys.line_reversal(7), "line:7"),
    (keys.accrual("100042", keys.line_reversal(7), "main"), "order:100042:line:7:main"),
    (keys.hold("100042"), "order:100042:hold"),
    (keys.hold("100042", 1), "order:100042:hold"),
    (keys.hold("100042", 2), "order:100042:hold:2"),
    (keys.release("100042"), "order:100042:release"),
    (keys.release("100042", 1), "order:100042:release"),
    (keys.release("100042", 3), "order:100042:release:3"),
    (keys.capture("100042"), "order:100042:capture"),
    (keys.order_refund("100042"), "order:100042:refund:all"),
    (keys.line_refund("100042", 7), "order:100042:refund:7"),
    (keys.job_card(17, 5), "job:17:card:5"),
    (keys.import_row(3, 12), "import:3:row:12"),
    (keys.undo("import:3:row:12"), "import:3:row:12:undo"),
    (keys.replacement(5), "replace:5"),
    (keys.manual("4f2a"), "manual:4f2a"),
    (keys.repay("order:100042:earn:main"), "order:100042:earn:main:repay"),
    (keys.debt("order:100042:cancel:main"), "order:100042:cancel:main:debt"),
]


@pytest.mark.parametrize(("made", "expected"), FORMATS, ids=[e for _m, e in FORMATS])
def test_each_key_is_written_as_in_the_ledgers_shops_have(made, expected):
    assert made == expected


def test_a_repay_leg_is_told_from_the_credit_it_belongs_to():
    assert keys.is_repay("job:17:card:5:repay")
    assert not keys.is_repay("job:17:card:5")
    assert not keys.is_repay("order:100042:refund:all")
