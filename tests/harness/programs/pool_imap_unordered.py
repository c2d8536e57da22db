# runs: 7
"""imap_unordered over a fork pool, results sorted for a stable output."""
import multiprocessing as mp

from rtrace.core import Document, retriever


@retriever(name="Shard")
def shard(query):
    return [Document("shard " + query)]


@retriever(name="FanOut")
def fan_out(query):
    with mp.get_context("fork").Pool(3) as pool:
        return sorted(docs[0].page_content for docs in pool.imap_unordered(shard, [f"{query}-{i}" for i in range(6)]))


if __name__ == "__main__":
    print(fan_out("u"))
