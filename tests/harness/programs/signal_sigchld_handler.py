# runs: 1
"""A SIGCHLD handler sees exactly the script's own children (no extra child of rtrace's)."""
import os
import signal
import subprocess
import sys
import time

from rtrace.core import Document, retriever

exits = []


def on_child(signum, frame):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exits.append(os.waitstatus_to_exitcode(status))


signal.signal(signal.SIGCHLD, on_child)


@retriever(name="Children")
def children(query):
    for code in (0, 4):
        pid = os.fork()
        if pid == 0:
            os._exit(code)
    deadline = time.monotonic() + 20
    while len(exits) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return [Document(query)]


children("fork")
print("exits", sorted(exits))
try:
    os.wait()
    print("a child was still there")
except ChildProcessError:
    print("no other child")
print(signal.getsignal(signal.SIGCHLD) is on_child)
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
r = subprocess.run([sys.executable, "-c", "print('sub')"], capture_output=True, text=True)
print(r.stdout.strip(), r.returncode)
