# runs: 1
"""The recursion limit and the depth a script can reach are python's (rtrace's frames cost nothing)."""
import sys

from rtrace.core import Document, retriever


def depth(n=1):
    try:
        return depth(n + 1)
    except RecursionError:
        return n


print("limit", sys.getrecursionlimit())
print("headroom", depth())


@retriever(name="Deep")
def deep(query):
    return [Document(str(depth()))]


print("headroom in a run", deep("q")[0].page_content)
sys.setrecursionlimit(2000)
print("limit", sys.getrecursionlimit(), "headroom", depth())
