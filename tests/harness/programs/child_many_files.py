# runs: 1
"""A traced child's own files get python's descriptor numbers, even hundreds of them (its log sits above)."""
import subprocess
import sys

CHILD = """
import os
from rtrace.core import retriever

@retriever(name="Many")
def many(q):
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(400)]
    try:
        return [f"{q}: {len(fds)} files, numbered one after another: {fds == list(range(fds[0], fds[0] + 400))}"]
    finally:
        for fd in fds:
            os.close(fd)

print(many("child")[0])
"""

subprocess.run([sys.executable, "-c", CHILD], check=True)
