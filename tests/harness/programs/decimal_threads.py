# runs: 2
"""The decimal context does not flow into threads, traced or not."""
import decimal
import threading

from rtrace.core import Document, retriever


def show(label):
    ctx = decimal.getcontext()
    print(label, ctx.prec, ctx.rounding, decimal.Decimal(1) / decimal.Decimal(7), flush=True)


@retriever(name="Money")
def money(query):
    decimal.getcontext().prec = 4
    t = threading.Thread(target=show, args=("thread-in-run",))
    t.start()
    t.join()
    show("in-run")
    return [Document(query)]


decimal.getcontext().prec = 6
decimal.getcontext().rounding = decimal.ROUND_DOWN
t = threading.Thread(target=show, args=("thread",))
t.start()
t.join()
money("a")
money("b")
show("main")
