# runs: 8
"""ProcessPoolExecutor with fork and with spawn."""
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

from rtrace.core import Document, retriever


@retriever(name="Shard")
def shard(query):
    return [Document("shard " + query)]


@retriever(name="FanOut")
def fan_out(query, method):
    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context(method)) as ex:
        return [docs[0].page_content for docs in ex.map(shard, [f"{query}-{i}" for i in range(3)])]


if __name__ == "__main__":
    print(fan_out("f", "fork"))
    print(fan_out("s", "spawn"))
