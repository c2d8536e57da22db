# runs: 2
"""threading.excepthook: the default prints the thread's traceback; a custom one replaces it."""
import threading

from rtrace.core import Document, retriever


@retriever(name="Failing")
def failing(query):
    raise ValueError(f"no index for {query}")


def target(query):
    failing(query)


t = threading.Thread(target=target, args=("default-hook",), name="worker-1")
t.start()
t.join()
print("default hook is python's:", threading.excepthook is threading.__excepthook__, flush=True)


def hook(args):
    print("custom hook:", args.exc_type.__name__, args.exc_value, args.thread.name, flush=True)


threading.excepthook = hook
t = threading.Thread(target=target, args=("custom-hook",), name="worker-2")
t.start()
t.join()
