"""Does nothing: the baseline for `tests/bench/startup.py`."""
