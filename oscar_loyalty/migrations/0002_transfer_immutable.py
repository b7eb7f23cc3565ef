"""On PostgreSQL, refuse UPDATE and DELETE of transfers in the database itself."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION oscar_loyalty_transfer_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'loyalty transfers are immutable: post a reversal instead';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER oscar_loyalty_transfer_immutable
    BEFORE UPDATE OR DELETE ON oscar_loyalty_transfer
    FOR EACH ROW EXECUTE FUNCTION oscar_loyalty_transfer_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS oscar_loyalty_transfer_immutable ON oscar_loyalty_transfer;
DROP FUNCTION IF EXISTS oscar_loyalty_transfer_immutable();
"""


def run(sql):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return operation


class Migration(migrations.Migration):
    dependencies = [("oscar_loyalty", "0001_initial")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]
