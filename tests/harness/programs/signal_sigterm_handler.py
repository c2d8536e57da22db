# runs: 2
"""A script's own SIGTERM handler runs, and is what signal.getsignal returns."""
import os
import signal

from rtrace.core import Document, retriever

caught = []


def on_term(signum, frame):
    caught.append(signum)
    print("caught", signal.Signals(signum).name, flush=True)


@retriever(name="Guarded")
def guarded(query):
    os.kill(os.getpid(), signal.SIGTERM)
    return [Document(query)]


print("before:", signal.getsignal(signal.SIGTERM))
previous = signal.signal(signal.SIGTERM, on_term)
print("previous:", previous)
print("installed is ours:", signal.getsignal(signal.SIGTERM) is on_term)
guarded("one")
guarded("two")
print("caught", len(caught))
signal.signal(signal.SIGTERM, signal.SIG_DFL)
print("restored:", signal.getsignal(signal.SIGTERM))
