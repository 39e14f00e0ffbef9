"""The fabric's core: what every side shares (errors, resource ids and names), importing nothing of the
project and no third-party library (tests/unit/test_layers.py keeps it so)."""
