"""Importing cards and balances from Excel: the bulk flow of the source documents.

A manager uploads (or pastes) a table of phones, card numbers, top-ups and actual balances.
The table becomes a *draft* import job (``Job`` of kind ``import``, status ``new``,
``params["draft"]``) whose chunks hold every row, parsed and checked against the database, so
the preview shows what will happen before anything is written. Confirming starts the job;
each chunk re-checks its rows under row locks and applies them, with ledger keys
``import:<job>:row:<n>``, so a redelivered chunk or a second run changes nothing more. A
finished import is undone by an *undo job* that reverses its transfers card by card.

What a row does (see README, "Importing from Excel"):

- the phone (or, when it is blank, the card number) finds the card of the programme; the
  card of a customer whose account or address has that phone counts as that phone's card;
- no card: a new one, numbered from the file or generated, bound to the customer who owns
  the phone, or to the phone alone until that customer appears; it opens with
  actual balance + top-up;
- an existing card: an actual balance that is not blank and not 0 becomes its balance, then
  the top-up is added (a negative one takes points away); the difference is one transfer of
  kind "import"; a result below zero is an error and the row changes nothing.
- an optional consent column (yes/no, да/нет, 1/0, +/-) sets the card's consent to messages,
  recorded as changed by the import's manager through "import"; blank leaves it, a value it
  cannot read is an error of the row; undo does not change it back.

The package, in the order a row goes through it:

- ``cells``: column roles, header words, amounts and consents as typed; no database;
- ``rows``: a parsed row, the cards the database knows for a batch of rows, what a row does;
- ``drafts``: the draft job, its preview, totals and errors, and starting it;
- ``apply``: applying a chunk of rows; ``undo``: reversing a finished import;
- ``handlers``: the job handler that runs a chunk of either.

Import the module you need (``from oscar_loyalty.card_import import drafts``): this package
imports none of them, so that ``cells`` stays free of models.
"""
