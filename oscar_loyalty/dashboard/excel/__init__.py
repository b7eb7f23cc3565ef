"""Dashboard area: import from Excel, the card and report exports, the points report."""
