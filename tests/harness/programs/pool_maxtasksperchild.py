# runs: 9
"""maxtasksperchild=1: every task in a new forked worker, the pool replacing them."""
import multiprocessing as mp
import os

from rtrace.core import Document, retriever


@retriever(name="Shard")
def shard(query):
    return [Document(query, metadata={"pid": os.getpid()})]


@retriever(name="FanOut")
def fan_out(query):
    with mp.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
        docs = [d for docs in pool.map(shard, [f"{query}-{i}" for i in range(8)], chunksize=1) for d in docs]
    print("distinct workers:", len({d.metadata["pid"] for d in docs}))
    return docs


if __name__ == "__main__":
    print([d.page_content for d in fan_out("m")])
