"""Small, deterministic search building blocks shared by the samples (no network, no models)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

from rtrace.core import Document

CORPUS = Path(__file__).with_name("corpus.jsonl")
_WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset("a an and are as at be by for from in into is it of on one or so such the their to with".split())


def require(*modules: str) -> None:
    """Stop with one line naming what to install when a sample's framework is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"{Path(sys.argv[0]).name} needs {', '.join(missing)}: pip install -e '.[samples]'")


def tokenize(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP]


def load_corpus() -> list[Document]:
    docs = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs.append(Document(row["text"], {"source": row["source"]}, id=row["id"]))
    return docs


class BM25Index:
    """Okapi BM25 over a list of documents."""

    def __init__(self, docs: list[Document], k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = docs
        self.k1, self.b = k1, b
        self.tfs = [Counter(tokenize(d.page_content)) for d in docs]
        self.lengths = [sum(tf.values()) for tf in self.tfs]
        self.avg = sum(self.lengths) / len(docs)
        df = Counter(t for tf in self.tfs for t in tf)
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        terms = tokenize(query)
        scored = []
        for doc, tf, length in zip(self.docs, self.tfs, self.lengths):
            s = 0.0
            for t in terms:
                f = tf.get(t, 0)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
            if s > 0:
                scored.append((doc, round(s, 4)))
        scored.sort(key=lambda p: (-p[1], p[0].id))
        return scored[:k]


def embed(text: str, dim: int = 64) -> list[float]:
    """A deterministic bag-of-hashed-words embedding (stands in for a real model)."""
    v = [0.0] * dim
    for w in tokenize(text):
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "big")
        v[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


class VectorIndex:
    """Exact cosine search over hashed embeddings."""

    def __init__(self, docs: list[Document]) -> None:
        self.docs = docs
        self.vectors = [embed(d.page_content) for d in docs]

    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        q = embed(query)
        scored = [(d, round(sum(a * b for a, b in zip(q, v)), 4)) for d, v in zip(self.docs, self.vectors)]
        scored.sort(key=lambda p: (-p[1], p[0].id))
        return scored[:k]
