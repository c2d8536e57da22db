# runs: 1
"""The script's own files get the descriptor numbers python gives them."""
import os
import tempfile

from rtrace.core import Document, retriever


@retriever(name="Files")
def files(query):
    with tempfile.TemporaryFile() as f:
        return [Document(f"{query} fd={f.fileno()}")]


r, w = os.pipe()
print("pipe", r, w)
os.close(r)
os.close(w)
print(files("q")[0].page_content)
fd = os.open(os.devnull, os.O_RDONLY)
print("devnull", fd)
os.close(fd)
