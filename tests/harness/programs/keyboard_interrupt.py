# runs: 1
"""An uncaught KeyboardInterrupt: python's traceback, and death by SIGINT (exit status -2)."""
from rtrace.core import Document, retriever


@retriever(name="Interrupted")
def interrupted(query):
    raise KeyboardInterrupt


try:
    print("start", flush=True)
finally:
    pass
interrupted("q")
