"""Concrete models; a shop that forks the app defines its own and these are skipped."""

from oscar.core.loading import is_model_registered

from oscar_loyalty import abstract_models

__all__ = []


if not is_model_registered("oscar_loyalty", "Program"):

    class Program(abstract_models.AbstractProgram):
        pass

    __all__.append("Program")


if not is_model_registered("oscar_loyalty", "Grade"):

    class Grade(abstract_models.AbstractGrade):
        pass

    __all__.append("Grade")


if not is_model_registered("oscar_loyalty", "Account"):

    class Account(abstract_models.AbstractAccount):
        pass

    __all__.append("Account")


if not is_model_registered("oscar_loyalty", "Card"):

    class Card(abstract_models.AbstractCard):
        pass

    __all__.append("Card")


if not is_model_registered("oscar_loyalty", "Transfer"):

    class Transfer(abstract_models.AbstractTransfer):
        pass

    __all__.append("Transfer")


if not is_model_registered("oscar_loyalty", "BalanceCheckpoint"):

    class BalanceCheckpoint(abstract_models.AbstractBalanceCheckpoint):
        pass

    __all__.append("BalanceCheckpoint")


if not is_model_registered("oscar_loyalty", "TotalsCheckpoint"):

    class TotalsCheckpoint(abstract_models.AbstractTotalsCheckpoint):
        pass

    __all__.append("TotalsCheckpoint")


if not is_model_registered("oscar_loyalty", "Accrual"):

    class Accrual(abstract_models.AbstractAccrual):
        pass

    __all__.append("Accrual")


if not is_model_registered("oscar_loyalty", "Hold"):

    class Hold(abstract_models.AbstractHold):
        pass

    __all__.append("Hold")


if not is_model_registered("oscar_loyalty", "GradeChange"):

    class GradeChange(abstract_models.AbstractGradeChange):
        pass

    __all__.append("GradeChange")


if not is_model_registered("oscar_loyalty", "StatusChange"):

    class StatusChange(abstract_models.AbstractStatusChange):
        pass

    __all__.append("StatusChange")


if not is_model_registered("oscar_loyalty", "PhoneChange"):

    class PhoneChange(abstract_models.AbstractPhoneChange):
        pass

    __all__.append("PhoneChange")


if not is_model_registered("oscar_loyalty", "Category"):

    class Category(abstract_models.AbstractCategory):
        pass

    __all__.append("Category")


if not is_model_registered("oscar_loyalty", "Job"):

    class Job(abstract_models.AbstractJob):
        pass

    __all__.append("Job")


if not is_model_registered("oscar_loyalty", "JobChunk"):

    class JobChunk(abstract_models.AbstractJobChunk):
        pass

    __all__.append("JobChunk")


if not is_model_registered("oscar_loyalty", "Message"):

    class Message(abstract_models.AbstractMessage):
        pass

    __all__.append("Message")
