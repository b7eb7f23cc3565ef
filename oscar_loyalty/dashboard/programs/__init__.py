"""Dashboard area: programmes and their grades."""
