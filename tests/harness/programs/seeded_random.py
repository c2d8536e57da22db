# runs: 7
"""Tracing never consumes the global random generator; re-seeding never repeats run ids."""
import random

from rtrace.core import Document, retriever


@retriever(name="Sampler")
def sample(query):
    return [Document(f"{query}:{random.random():.12f}")]


random.seed(1234)
print(sample("a")[0].page_content, random.random())
print(sample("b")[0].page_content, random.getrandbits(64))
for i in range(5):  # a script that re-seeds before every query
    random.seed(42)
    print(sample(f"q{i}")[0].page_content, random.randint(0, 10**9))
