# runs: 3
"""A job that fails in a ThreadPoolExecutor inside a run: the re-raised traceback is python's."""
import traceback
from concurrent.futures import ThreadPoolExecutor

from rtrace.core import Document, retriever


def job(query):
    raise ValueError(f"shard down: {query}")


@retriever(name="Leaf")
def leaf(query):
    return [Document(query)]


@retriever(name="FanOut")
def fan_out(query):
    with ThreadPoolExecutor(2) as ex:
        future = ex.submit(job, query)
        docs = ex.submit(leaf, query + "-ok").result()
        try:
            future.result()
        except ValueError:
            traceback.print_exc()
        future = ex.submit(leaf, query + "-again")
    return docs + future.result()


print([d.page_content for d in fan_out("q")])
