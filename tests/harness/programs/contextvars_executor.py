# runs: 9
"""ThreadPoolExecutor jobs see Python's defaults for user ContextVars; nested runs stay nested."""
import contextvars
import decimal
from concurrent.futures import ThreadPoolExecutor

from rtrace.core import Document, retriever

user_var = contextvars.ContextVar("user_var", default="default")


@retriever(name="Shard")
def shard(query):
    return [Document(f"{query} var={user_var.get()} prec={decimal.getcontext().prec}")]


def plain(query):
    return f"{query} var={user_var.get()} prec={decimal.getcontext().prec}"


@retriever(name="FanOut")
def fan_out(query):
    user_var.set("in-run")
    decimal.getcontext().prec = 3
    with ThreadPoolExecutor(max_workers=2) as pool:
        docs = [d for docs in pool.map(shard, [f"{query}-{i}" for i in range(3)]) for d in docs]
        print(sorted(pool.map(plain, ["p1", "p2"])))
    return docs


user_var.set("main")
decimal.getcontext().prec = 9
with ThreadPoolExecutor(max_workers=2) as pool:
    print(pool.submit(plain, "top").result())
    print(pool.submit(shard, "top-run").result()[0].page_content)
for q in ("a", "b"):
    print([d.page_content for d in fan_out(q)])
