"""Dashboard area: customer categories."""
