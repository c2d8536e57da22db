# runs: 1
"""Signal dispositions as python leaves them, in the script and in a forked child."""
import os
import signal

from rtrace.core import Document, retriever

NAMES = ("SIGTERM", "SIGINT", "SIGCHLD", "SIGPIPE", "SIGHUP", "SIGUSR1", "SIGQUIT", "SIGALRM")


def dispositions():
    return {name: str(signal.getsignal(getattr(signal, name))) for name in NAMES}


@retriever(name="Probe")
def probe(query):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, repr(dispositions()).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    data = os.read(r, 65536).decode()
    os.close(r)
    return [Document(data)]


print(dispositions())
print("in forked child:", probe("x")[0].page_content)
