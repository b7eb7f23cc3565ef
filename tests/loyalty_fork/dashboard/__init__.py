"""The fork's dashboard: only the card list's table is its own."""
