# runs: 4
"""Threads see Python's defaults for the starter's ContextVars, inside a traced run too."""
import contextvars
import threading

from rtrace.core import Document, retriever

user_var = contextvars.ContextVar("user_var", default="default")


def report(label):
    print(label, user_var.get(), flush=True)


@retriever(name="Outer")
def outer(query):
    user_var.set("set-in-run")
    t = threading.Thread(target=report, args=("thread-in-run",))
    t.start()
    t.join()
    t = threading.Thread(target=inner, args=(query + "-child",))
    t.start()
    t.join()
    return [Document(query)]


@retriever(name="Inner")
def inner(query):
    report("inner-" + query)
    return [Document(query)]


user_var.set("set-in-main")
t = threading.Thread(target=report, args=("thread",))
t.start()
t.join()
outer("q1")
outer("q2")
print("main", user_var.get())
