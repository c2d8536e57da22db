# runs: 1
# args: 7
"""sys.exit(N) from inside a traced run: the same exit code."""
import sys

from rtrace.core import retriever


@retriever(name="Exiting")
def exiting(query):
    print("exiting with", query, flush=True)
    sys.exit(int(query))


exiting(sys.argv[1])
