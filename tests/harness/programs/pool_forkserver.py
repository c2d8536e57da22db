# runs: 4
# timeout: 90
"""A forkserver Pool; imap keeps order."""
import multiprocessing as mp

from rtrace.core import Document, retriever


@retriever(name="Shard")
def shard(query):
    return [Document("shard " + query, id=query)]


@retriever(name="FanOut")
def fan_out(query):
    with mp.get_context("forkserver").Pool(2) as pool:
        return [docs[0].page_content for docs in pool.imap(shard, [f"{query}-{i}" for i in range(3)])]


if __name__ == "__main__":
    print(fan_out("fs"))
