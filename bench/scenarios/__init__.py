"""One module per benchmark scenario, each a `run(b: Bench)` over bench/harness.py; bench/run.py
lists them in report order."""
