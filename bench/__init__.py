"""Benchmarks of Atlas Énergie 74 (run them all with `python -m bench`)."""
