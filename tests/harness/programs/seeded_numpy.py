# runs: 3
# requires: numpy
"""Seeded numpy streams (legacy global state and Generator) are untouched by tracing."""
import numpy as np

from rtrace.core import Document, retriever


@retriever(name="Dense")
def dense(query):
    return [Document(f"{query} {np.random.rand():.10f}")]


np.random.seed(7)
rng = np.random.default_rng(7)
for q in ("x", "y", "z"):
    print(dense(q)[0].page_content, f"{np.random.rand():.10f}", f"{rng.random():.10f}")
