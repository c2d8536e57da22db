"""Reading logs: reader, run trees, filters and the analyses built on them."""
