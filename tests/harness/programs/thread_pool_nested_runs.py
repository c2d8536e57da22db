# runs: 5
"""Runs submitted to threads from inside a run nest under it; a thread started outside runs stays a root."""
import threading
from concurrent.futures import ThreadPoolExecutor

from rtrace.core import Document, retriever


@retriever(name="Leaf")
def leaf(query):
    return [Document(query)]


@retriever(name="Root")
def root(query):
    with ThreadPoolExecutor(2) as ex:
        docs = list(ex.map(leaf, [query + "-1", query + "-2"]))
    t = threading.Thread(target=leaf, args=(query + "-t",))
    t.start()
    t.join()
    return [d for r in docs for d in r]


print([d.page_content for d in root("r")])
t = threading.Thread(target=leaf, args=("lonely",))
t.start()
t.join()
print(threading.active_count(), [t.name for t in threading.enumerate()])
