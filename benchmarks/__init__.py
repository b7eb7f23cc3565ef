"""Benchmarks of django-oscar-loyalty: measured ratios against a floor taken in the same run."""
