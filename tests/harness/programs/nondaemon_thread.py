# runs: 41
"""A non-daemon thread still running when the script ends: all its runs are recorded, in session."""
import threading
import time

from rtrace.core import Document, retriever


@retriever(name="Background")
def background(query):
    time.sleep(0.005)
    return [Document(query)]


def worker():
    for i in range(40):
        background(f"bg-{i}")
    print("worker done", flush=True)


@retriever(name="Main")
def main_search(query):
    return [Document(query)]


threading.Thread(target=worker).start()
main_search("main")
print("main done", flush=True)
