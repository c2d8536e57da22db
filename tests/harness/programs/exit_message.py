# runs: 0
"""sys.exit("message"): printed to stderr, exit code 1; SystemExit(None) inside try/finally."""
import sys

try:
    print("cleanup runs", flush=True)
finally:
    sys.exit("fatal: no index configured")
