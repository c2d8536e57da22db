"""A handler that prints runs as they happen: the default view of ``rtrace replay``."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from rtrace.cli.render.lines import Line, Lines
from rtrace.cli.render.text import clean, ms
from rtrace.cli.render.tree import STATUS_MARK
from rtrace.core.record.documents import record_documents
from rtrace.core.record.handlers import BaseCallbackHandler


MAX_INDENT = 24


class ConsoleHandler(BaseCallbackHandler):
    """One line per event, indented under its parent run."""

    run_inline = True

    def __init__(self, console: Any) -> None:
        self.console = console
        self.depth: dict[UUID, int] = {}
        self.names: dict[UUID, str] = {}
        self.lock = threading.Lock()

    def _print(self, run_id: UUID, line: Line) -> None:
        depth = self.depth.get(run_id, 0)
        # Past MAX_INDENT levels a count stands for the rest: a line stays short however deep runs nest.
        indent = "  " * min(depth, MAX_INDENT) + (f"[+{depth - MAX_INDENT}] " if depth > MAX_INDENT else "")
        line.prefix = indent + line.prefix
        with self.lock:
            self.console.print(Lines([line]))

    def _begin(self, run_id: UUID, parent_run_id: UUID | None, name: str) -> None:
        self.depth[run_id] = self.depth.get(parent_run_id, -1) + 1 if parent_run_id in self.depth else 0
        self.names[run_id] = name

    def on_retriever_start(self, serialized: Any, query: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                           name: str | None = None, **kwargs: Any) -> None:
        self._begin(run_id, parent_run_id, name or "Retriever")
        self._print(run_id, Line("").add("▶ ", "cyan").add(clean(self.names[run_id], 60, True), "bold cyan")
                    .add("  “" + clean(query if query is not None else "", 200, True) + "”"))

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        docs = record_documents(documents)
        mark, style = STATUS_MARK["ok"]
        line = Line("").add(mark + " ", style).add(clean(self.names.get(run_id, "?"), 60, True), "bold")
        line.add(f"  {ms(kwargs.get('duration_ms'))}" if kwargs.get("duration_ms") is not None else "", "dim")
        line.add(f"  {len(docs)} doc{'s' if len(docs) != 1 else ''}", "green")
        if docs:
            line.add("  " + " ".join(clean(d["id"] or "?", 20, True) for d in docs[:5]), "dim")
        self._print(run_id, line)
        self.depth.pop(run_id, None)
        self.names.pop(run_id, None)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        mark, style = STATUS_MARK["error"]
        self._print(run_id, Line("").add(mark + " ", style).add(clean(self.names.get(run_id, "?"), 60, True), "bold red")
                    .add(f"  {clean(type(error).__name__, 40)}: {clean(str(error), 200, True)}", "red"))
        self.depth.pop(run_id, None)
        self.names.pop(run_id, None)

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        outcome = getattr(retry_state, "outcome", None)
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        line = Line("").add("  ↻ ", "yellow").add(f"attempt {getattr(retry_state, 'attempt_number', '?')}", "yellow")
        if exc is not None:
            line.add(f"  {clean(type(exc).__name__, 40)}: {clean(str(exc), 200, True)}", "red")
        self._print(run_id, line)

    def on_text(self, text: str, *, run_id: UUID, **kwargs: Any) -> None:
        self._print(run_id, Line("").add("  ✎ ", "dim").add(clean(text, 300, True), "italic"))

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._print(run_id, Line("").add("  ◆ ", "blue").add(clean(name, 60, True), "blue").add("  " + clean(data, 200, True), "dim"))
