"""What python-calamine is not given: sheets it would build too large (``excel``)."""

from tests import excel_support as files


def test_two_cells_far_apart_are_refused_before_the_sheet_is_built():
    # calamine would allocate the rectangle between them: 17 billion cells
    rows = [
        '<row r="1"><c r="A1"><v>1</v></c></row>',
        '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>',
    ]
    result = files.bounded_read(files.hand_xlsx(rows))
    assert result["refused"] == (
        "The sheet spreads over 1048576 rows and up to 16384 columns, more than 6000000 "
        "cells: delete what lies beside the table or split it into smaller files."
    )


def test_cells_without_references_count_towards_the_width():
    cells = "<c><v>1</v></c>" * 16384
    rows = [f'<row r="1">{cells}</row>', '<row r="1048576"><c><v>1</v></c></row>']
    result = files.bounded_read(files.hand_xlsx(rows))
    assert result["refused"].startswith("The sheet spreads over 1048576 rows")


def test_a_sparse_sheet_of_few_columns_is_read():
    rows = [
        '<row r="1"><c r="A1"><v>1</v></c></row>',
        '<row r="300000"><c r="B300000"><v>2</v></c></row>',
    ]
    assert files.bounded_read(files.hand_xlsx(rows))["rows"] == 2
