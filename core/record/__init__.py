"""Inside the traced program: managers, handlers and the JSONL writer."""
