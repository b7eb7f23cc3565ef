"""The ledger's set-based SQL: multi-row INSERTs without a model instance per row, for the
transfers and accounts of bulk operations (``ledger.post_movements``, new cards of an import).

Private to ``oscar_loyalty.ledger``: no other module writes transfers or balances with raw
SQL. Reading helpers (array lookups) live in ``oscar_loyalty.lookups``.

``bulk_create`` builds and validates a model instance for every row, which costs several times
more than the database work when an import issues a hundred thousand cards. ``insert`` takes
plain tuples for the columns that vary, fills every other concrete field with its default once
per call (so a shop's forked model with extra fields still gets them), and sends one
``INSERT ... VALUES (...), (...) RETURNING id`` per batch. It writes rows only; balances are
moved by ``ledger`` alone.

``insert_one`` is the single-row counterpart for the legs of one operation: a spend is two
statements, and ``Model.save()`` spent more Python compiling its INSERT than the database
spent running it (benchmarks/README.md).
"""

from django.db import connections, router
from django.db.models import DateField, DateTimeField, DecimalField
from django.db.models.fields import AutoFieldMixin

from oscar_loyalty.lookups import array_literal, bulk_cursor

BATCH = 1000


def _default(field, connection):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        from django.utils import timezone

        value = timezone.now() if isinstance(field, DateTimeField) else timezone.localdate()
    else:
        value = field.get_default()
    return field.get_db_prep_save(value, connection)


_ONE_ROW_SQL = {}


def _one_row_statement(model, connection):
    """The cached ``INSERT`` of every concrete field but a database-drawn key, those fields,
    whether the key is drawn, and whether the statement returns it."""
    cache_key = (model, connection.alias)
    if cache_key not in _ONE_ROW_SQL:
        opts = model._meta
        drawn = isinstance(opts.pk, AutoFieldMixin)
        fields = [f for f in opts.concrete_fields if not (drawn and f is opts.pk)]
        quote = connection.ops.quote_name
        sql = (
            f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))})"
        )
        returning = drawn and connection.features.can_return_columns_from_insert
        if returning:
            sql += f" RETURNING {quote(opts.pk.column)}"
        _ONE_ROW_SQL[cache_key] = (sql, fields, drawn, returning)
    return _ONE_ROW_SQL[cache_key]


def insert_one(obj, using=None):
    """Insert the new instance ``obj`` as ``save(force_insert=True)`` would (field defaults
    and ``pre_save`` applied, the new key set on it) with a statement built once per model.
    No ``pre_save``/``post_save`` signals are sent: the ledger's rows have no receivers."""
    model = type(obj)
    using = using or router.db_for_write(model)
    connection = connections[using]
    sql, fields, drawn, returning = _one_row_statement(model, connection)
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if drawn:
            obj.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    obj._state.adding = False
    obj._state.db = using


def insert(model, columns, rows, using=None, keys=True, **same):
    """Insert ``rows`` (tuples of values for the ``columns`` attnames) and return their new
    primary keys in the same order (``keys=False``: nothing, on PostgreSQL not even read).
    ``same`` gives values (by attname) shared by every row, sent once. Values must already be
    database-ready (str, int, None, Decimal); dates are converted per row."""
    rows = list(rows)
    if not rows:
        return []
    using = using or router.db_for_write(model)
    connection = connections[using]
    opts = model._meta
    by_attname = {f.attname: f for f in opts.concrete_fields}
    given = [by_attname[name] for name in columns]
    shared = [by_attname[name] for name in same]
    others = [
        f
        for f in opts.concrete_fields
        if f.attname not in columns and f.attname not in same and f is not opts.pk
    ]
    constants = [f.get_db_prep_save(same[f.attname], connection) for f in shared]
    constants += [_default(f, connection) for f in others]
    others = shared + others
    converters = [
        (i, f)
        for i, f in enumerate(given)
        if isinstance(f, (DateField, DecimalField)) and connection.vendor != "postgresql"
    ]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    names = ", ".join(quote(f.column) for f in [*given, *others])
    if connection.vendor == "postgresql":
        return _insert_unnest(connection, table, names, opts, given, others, constants, rows, keys)
    width = len(given) + len(others)
    placeholder = "(" + ", ".join(["%s"] * width) + ")"
    limit = connection.features.max_query_params
    batch = min(BATCH, limit // width) if limit else BATCH
    returning = connection.features.can_return_rows_from_bulk_insert
    pks = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            params = []
            for row in part:
                if converters:
                    row = list(row)
                    for i, f in converters:
                        row[i] = f.get_db_prep_save(row[i], connection)
                params.extend(row)
                params.extend(constants)
            sql = f"INSERT INTO {table} ({names}) VALUES " + ", ".join([placeholder] * len(part))
            if returning:
                cursor.execute(sql + f" RETURNING {quote(opts.pk.column)}", params)
                pks.extend(row[0] for row in cursor.fetchall())
            else:  # no RETURNING (MySQL): one row at a time, reading the last id
                for row_start in range(0, len(params), width):
                    cursor.execute(
                        f"INSERT INTO {table} ({names}) VALUES {placeholder}",
                        params[row_start : row_start + width],
                    )
                    pks.append(cursor.lastrowid)
    return pks


def _insert_unnest(connection, table, names, opts, given, others, constants, rows, keys):
    """PostgreSQL: one array parameter per column (``INSERT ... SELECT FROM unnest``), so
    the statement stays short however many rows it carries. Rows are inserted in order, so
    keys drawn from a sequence rise with them: those come back as one text value (a row
    each costs more to fetch than to insert); other keys as ``RETURNING`` rows, in order."""
    quote = connection.ops.quote_name
    pk = quote(opts.pk.column)
    arrays = [f"%s::{f.db_type(connection)}[]" for f in given]
    scalars = [f"%s::{f.db_type(connection)}" for f in others]
    aliases = ", ".join(f"c{i}" for i in range(len(given)))
    select = ", ".join([*(f"u.c{i}" for i in range(len(given))), *scalars])
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {select} "
        f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS u({aliases}, ord) ORDER BY u.ord"
    )
    serial = isinstance(opts.pk, AutoFieldMixin)
    if keys and serial:
        sql = (
            f"WITH new AS ({sql} RETURNING {pk}) "
            f"SELECT string_agg({pk}::text, ',' ORDER BY {pk}) FROM new"
        )
    elif keys:
        sql += f" RETURNING {pk}"
    columns = list(zip(*rows, strict=True))
    pks = []
    with bulk_cursor(connection) as cursor:
        step = BATCH * 5
        for start in range(0, len(rows), step):
            params = [array_literal(column[start : start + step]) for column in columns]
            cursor.execute(sql, [*constants, *params])  # the SELECT list comes first
            if keys and serial:
                pks.extend(map(int, cursor.fetchone()[0].split(",")))
            elif keys:
                pks.extend(row[0] for row in cursor.fetchall())
    return pks
