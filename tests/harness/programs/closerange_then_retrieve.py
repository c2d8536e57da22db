# runs: 2
"""A program that closes every descriptor it inherited (as daemons do), then opens its own files
and retrieves again: it sees what python gives it, and nothing of rtrace's lands in its files."""
import os
import tempfile

from rtrace.core import Document, retriever


@retriever(name="Search")
def search(query):
    return [Document(f"{query} passage", id="d1")]


print(search("before")[0].page_content)
os.closerange(3, 1 << 16)
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "own.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # the lowest free number: one of rtrace's, once
    print("own fd", fd)
    print(search("after")[0].page_content)
    os.write(fd, b"mine\n")
    os.close(fd)
    with open(path, "rb") as f:
        print("own file", f.read())
