# runs: 2
"""stdout/stderr buffering, isatty and encoding: interleaving with raw writes is python's."""
import os
import sys

from rtrace.core import Document, retriever

print("isatty", sys.stdout.isatty(), sys.stderr.isatty(), sys.stdin.isatty())
print("line_buffering", sys.stdout.line_buffering, sys.stderr.line_buffering)
print("encoding", sys.stdout.encoding, sys.stdout.errors, sys.stderr.errors)
print("fileno", sys.stdout.fileno(), sys.stderr.fileno())


@retriever(name="Noisy")
def noisy(query):
    print("buffered line from", query)
    os.write(1, b"raw write to fd 1\n")
    sys.stderr.write("stderr line\n")
    return [Document(query)]


noisy("a")
noisy("b")
print("end without flush", end="")
