"""Typed errors of the loyalty services; each message is fit to show the user who caused it."""

from django.utils.translation import gettext as _

from oscar_loyalty.formats import format_points


class LoyaltyError(Exception):
    """Base of every error the loyalty services raise on purpose."""


class InvalidAmount(LoyaltyError):
    pass


class ReversalTooLarge(InvalidAmount):
    """A reversal asked for more than its transfer has left after the earlier reversals."""

    def __init__(self, transfer, left):
        self.transfer, self.left = transfer, left
        super().__init__(
            _("Only %(left)s of the %(amount)s points of %(key)s are left to reverse.")
            % {
                "left": format_points(left),
                "amount": format_points(transfer.amount),
                "key": transfer.key,
            }
        )


class InsufficientPoints(LoyaltyError):
    def __init__(self, available, wanted):
        self.available, self.wanted = available, wanted
        super().__init__(
            _("Not enough points: %(available)s available, %(wanted)s needed.")
            % {"available": format_points(available), "wanted": format_points(wanted)}
        )


class CardUnavailable(LoyaltyError):
    """The card is blocked, closed or not participating."""


class KeyConflict(LoyaltyError):
    def __init__(self, key):
        self.key = key
        super().__init__(
            _("The operation %(key)s was already recorded with other details.") % {"key": key}
        )


class StatusChangeRefused(LoyaltyError):
    """The card's status does not allow this change (unblocking an active card...)."""


class CardNumberInvalid(LoyaltyError):
    pass


class CardExists(LoyaltyError):
    pass


class PhoneInvalid(LoyaltyError):
    pass


class GradeError(LoyaltyError):
    pass


class PaymentRefused(LoyaltyError):
    """Points cannot pay for this order as asked; the message tells the customer why."""
