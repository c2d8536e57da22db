# runs: 3
"""atexit handlers run in Python's order, after the script; runs made in them are recorded."""
import atexit

from rtrace.core import Document, retriever


@retriever(name="AtExit")
def at_exit_search(query):
    return [Document(query)]


def first():
    print("registered first, runs last", flush=True)
    at_exit_search("from first")


def second(arg):
    print("registered second, runs first:", arg, flush=True)
    at_exit_search("from second")


atexit.register(first)
atexit.register(second, "with an argument")
atexit.register(print, "unregistered?")
atexit.unregister(print)
at_exit_search("in main")
print("main done", flush=True)
