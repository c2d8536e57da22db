# runs: 1
# args: --flag value
"""__main__, argv, sys.path[0], __file__, __spec__ and the builtins are python's."""
import os
import sys

from rtrace.core import Document, retriever

main = sys.modules["__main__"]
print(__name__, main is sys.modules[__name__], __spec__, type(__builtins__).__name__)
print(sys.argv[1:], os.path.basename(sys.argv[0]), os.path.basename(__file__))
print(sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
print(sys.flags.interactive, sys.flags.optimize, sys.flags.dont_write_bytecode)
print("rtrace" in sys.modules.get("__main__").__dict__, [k for k in globals() if k.startswith("__")])


@retriever(name="Probe")
def probe(query):
    return [Document(query)]


probe("q")
