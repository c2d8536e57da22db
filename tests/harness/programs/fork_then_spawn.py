# runs: 4
# timeout: 90
"""A forked child that exits does not stop the tracing of children started after it."""
import os
import subprocess
import sys

from rtrace.core import Document, retriever

CHILD = """
from rtrace.core import Document, retriever

@retriever(name="SubprocessChild")
def lookup(query):
    return [Document(query)]

print("subprocess:", lookup("sub")[0].page_content)
"""


@retriever(name="Parent")
def parent(query):
    pid = os.fork()
    if pid == 0:
        print("forked child exits", flush=True)
        sys.exit(0)  # runs the script's exit path in the child: must leave the parent's tracing alone
    os.waitpid(pid, 0)
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    print(out.stdout.strip(), out.stderr.strip(), out.returncode)
    return [Document(query)]


parent("one")
parent("two")
