# runs: 2
"""An uncaught exception with a cause: Python's traceback, byte for byte, and exit code 1."""
from rtrace.core import Document, retriever


@retriever(name="Inner")
def inner(query):
    raise KeyError(query)


@retriever(name="Outer")
def outer(query):
    try:
        return inner(query)
    except KeyError as e:
        raise LookupError("outer failed") from e


print("start", flush=True)
outer("missing")
