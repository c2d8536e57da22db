# runs: 2
"""A script's own SIGINT handler, then Python's default one raising KeyboardInterrupt."""
import os
import signal

from rtrace.core import Document, retriever


@retriever(name="Interruptible")
def interruptible(query):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
    except KeyboardInterrupt:
        print("KeyboardInterrupt caught in", query, flush=True)
    return [Document(query)]


print("default handler:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
interruptible("default")
signal.signal(signal.SIGINT, lambda s, f: print("custom handler ran", flush=True))
interruptible("custom")
