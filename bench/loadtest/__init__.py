"""Load-test tooling: gunicorn runner and wrk scripts for the benchmarks."""
