"""Dashboard area: jobs (mass accruals, imports, exports) and their progress."""
