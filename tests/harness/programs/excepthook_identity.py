# runs: 1
"""sys.excepthook is python's own; a script's hook prints the uncaught exception."""
import sys

from rtrace.core import Document, retriever

print("excepthook is python's:", sys.excepthook is sys.__excepthook__)
print("module:", getattr(sys.excepthook, "__module__", None), getattr(sys.excepthook, "__name__", None))


def hook(exc_type, exc, tb):
    frames = 0
    while tb is not None:
        frames += 1
        tb = tb.tb_next
    print(f"custom hook: {exc_type.__name__}: {exc} ({frames} frames)", file=sys.stderr)


@retriever(name="Boom")
def boom(query):
    raise RuntimeError("boom " + query)


sys.excepthook = hook
boom("q")
