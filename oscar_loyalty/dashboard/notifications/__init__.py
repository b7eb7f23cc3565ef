"""The message log: what was sent to customers, what failed, and resending it."""
