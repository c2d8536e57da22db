# runs: 15
"""A fork Pool in a with-block, used several times (this used to hang under rtrace run)."""
import multiprocessing as mp

from rtrace.core import Document, retriever


@retriever(name="Shard")
def shard(query):
    return [Document("shard " + query, id=query)]


@retriever(name="FanOut")
def fan_out(query):
    with mp.get_context("fork").Pool(2) as pool:
        return [d.page_content for docs in pool.map(shard, [f"{query}-{i}" for i in range(4)]) for d in docs]


if __name__ == "__main__":
    for q in ("a", "b", "c"):
        print(fan_out(q))
