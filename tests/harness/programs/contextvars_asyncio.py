# runs: 6
"""asyncio tasks copy the context (as Python does); traced runs nest across tasks."""
import asyncio
import contextvars
import decimal

from rtrace.core import Document, retriever

user_var = contextvars.ContextVar("user_var", default="default")


@retriever(name="Leaf")
async def leaf(query):
    await asyncio.sleep(0)
    return [Document(f"{query} {user_var.get()} {decimal.getcontext().prec}")]


@retriever(name="Root")
async def root(query):
    user_var.set("root")
    results = await asyncio.gather(leaf(query + "1"), leaf(query + "2"))
    in_thread = await asyncio.to_thread(lambda: user_var.get())
    loop = asyncio.get_running_loop()
    in_executor = await loop.run_in_executor(None, lambda: user_var.get())
    print("to_thread", in_thread, "run_in_executor", in_executor)
    return [d for r in results for d in r]


async def main():
    user_var.set("main")
    decimal.getcontext().prec = 5
    for q in ("a", "b"):
        print([d.page_content for d in await root(q)])


asyncio.run(main())
