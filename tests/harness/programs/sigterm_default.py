# runs: 1
"""SIGTERM with the default disposition kills at once: no finally, no atexit, status -15."""
import atexit
import os
import signal

from rtrace.core import Document, retriever

atexit.register(print, "atexit must not run")


@retriever(name="Killed")
def killed(query):
    print("about to die", flush=True)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10**6):
            pass
    finally:
        print("finally must not run", flush=True)
    return [Document(query)]


killed("q")
