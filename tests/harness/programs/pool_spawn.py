# runs: 5
# timeout: 90
"""A spawn Pool in a with-block: workers are fresh interpreters, traced under the run that started them."""
import multiprocessing as mp

from rtrace.core import Document, retriever


@retriever(name="Shard")
def shard(query):
    return [Document("shard " + query, id=query)]


@retriever(name="FanOut")
def fan_out(query):
    with mp.get_context("spawn").Pool(2) as pool:
        return [d.page_content for docs in pool.map(shard, [f"{query}-{i}" for i in range(4)]) for d in docs]


if __name__ == "__main__":
    print(fan_out("s"))
