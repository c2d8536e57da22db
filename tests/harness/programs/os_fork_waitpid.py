# runs: 4
"""os.fork + waitpid: the child's exit status, output and runs; one summary, one session each."""
import os
import sys

from rtrace.core import Document, retriever


@retriever(name="Work")
def work(query):
    return [Document(query)]


work("before-fork")
sys.stdout.flush()
for code in (0, 3):
    pid = os.fork()
    if pid == 0:
        work(f"child-{code}")
        print("child", code, "done", flush=True)
        sys.exit(code)
    _, status = os.waitpid(pid, 0)
    print("exit status", os.waitstatus_to_exitcode(status), flush=True)
work("after-children")
