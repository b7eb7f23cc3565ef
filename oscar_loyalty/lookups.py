"""Reading many rows at once: long ``IN`` lists sent as one array parameter.

Pure read helpers shared by the card import, the ledger and anyone who looks up thousands of
values (phones, card numbers, ids) in one query. Writing stays in ``ledger``.
"""

import re
from contextlib import contextmanager

from django.db import connections, router
from django.db.models import F, Lookup, Q

_PLAIN = re.compile(r"[A-Za-z0-9_.:+\-]+")
_PLAIN_LIST = re.compile(r"[A-Za-z0-9_.:+\-,]+")


def array_literal(values):
    """A PostgreSQL array literal (``{a,b,NULL}``) of str, int or Decimal values.

    psycopg renders a list parameter element by element through a regular expression; for
    the thousands of values of an import chunk, writing the literal here is many times
    cheaper, and it travels as one plain string parameter (cast in the SQL).
    """
    values = list(values)
    if not values:
        return "{}"
    if None not in values:
        texts = list(map(str, values))
        joined = ",".join(texts)
        if all(texts) and _PLAIN_LIST.fullmatch(joined) and "NULL" not in joined.upper():
            return "{" + joined + "}"
        if '"' not in joined and "\\" not in joined:  # every element quoted, none escaped
            return '{"' + '","'.join(texts) + '"}'
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
            continue
        text = str(value)
        if not _PLAIN.fullmatch(text) or text.upper() == "NULL":
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(text)
    return "{" + ",".join(parts) + "}"


@contextmanager
def bulk_cursor(connection):
    """A cursor for statements that carry big array parameters.

    Django's psycopg 3 cursors bind on the client: every parameter is quoted into the SQL
    text, which for the array literals of an import chunk costs more than running the
    statement. On PostgreSQL this cursor sends them apart from the SQL (server-side
    binding); errors are still Django's (``IntegrityError``...).
    """
    if connection.vendor != "postgresql" or connection.Database.__name__ != "psycopg":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        connection.Database.Cursor(connection.connection) as cursor,
    ):
        yield cursor


class _AnyOf(Lookup):
    """``column IN (SELECT unnest(%s::type[]))`` with the values as one array literal.

    Written as a semi-join rather than ``= ANY(array)``: with a thousand values PostgreSQL
    costs ``= ANY`` as a filter and may scan the whole table, while the join probes the
    column's index once per value.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        base = field.target_field if field.is_relation else field
        cast = base.db_type(connection)
        sql = f"{lhs} IN (SELECT unnest(%s::{cast}[]))"
        return sql, [*lhs_params, array_literal(self.rhs)]


def among(model, name, values):
    """``Q(name__in=values)``; on PostgreSQL a single array parameter, because a driver-side
    list of a thousand placeholders costs more to send than the lookup costs to run."""
    values = list(values)
    if connections[router.db_for_read(model)].vendor != "postgresql":
        return Q(**{f"{name}__in": values})
    return _AnyOf(F(name), values)
