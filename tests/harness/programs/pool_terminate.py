# runs: 1
"""Pool.terminate() kills busy fork workers at once (they must not inherit a SIGTERM handler)."""
import multiprocessing as mp
import time

from rtrace.core import Document, retriever


def busy(i):
    time.sleep(30)
    return i


@retriever(name="Cancelled")
def cancelled(query):
    pool = mp.get_context("fork").Pool(3)
    result = pool.map_async(busy, range(6))
    time.sleep(0.3)
    t0 = time.monotonic()
    pool.terminate()
    pool.join()
    print("terminated quickly:", time.monotonic() - t0 < 10, "ready:", result.ready())
    return [Document(query)]


if __name__ == "__main__":
    cancelled("stop")
    with mp.get_context("fork").Pool(2) as pool:  # leaving the with-block terminates too
        print(pool.map(abs, [-1, -2, 3]))
