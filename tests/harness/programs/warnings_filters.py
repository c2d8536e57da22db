# runs: 1
"""warnings: the same filters, shown once per location, to stderr, in the same format."""
import sys
import warnings

from rtrace.core import Document, retriever

print(len(warnings.filters), [f[0] for f in warnings.filters])
print(sys.warnoptions)


@retriever(name="Deprecated")
def deprecated(query):
    for _ in range(3):
        warnings.warn("old API", UserWarning)
    warnings.warn("gone soon", DeprecationWarning)
    return [Document(query)]


deprecated("q")
warnings.simplefilter("error", RuntimeWarning)
try:
    warnings.warn("now an error", RuntimeWarning)
except RuntimeWarning as e:
    print("raised:", e)
