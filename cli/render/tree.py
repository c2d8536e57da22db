"""`rtrace show`: traces as trees of runs, retries, documents and errors."""

from __future__ import annotations

from typing import Any

from rtrace.cli.render.text import clean, compact, key_values, ms
from rtrace.core.read.diff import rerank_moves
from rtrace.core.read.trees import ordered_children, user_tags
from rtrace.core.times import format_ts, zone_label

SOURCE_KEYS = ("source", "url", "path", "file", "filename", "title")
HIDDEN_META = ("ls_",)  # LangChain's bookkeeping keys: shown with --expand only
STATUS_MARK = {"ok": ("✓", "green"), "error": ("✗", "bold red"), "incomplete": ("…", "magenta")}
MAX_GUIDES = 12  # tree levels drawn with guides; deeper ones are counted ([+N]) so a line keeps room at 80 columns
KIND_STYLE = {"retriever": "bold cyan", "chain": "blue", "tool": "blue", "llm": "blue"}
# The request fields on a run's head line: the knobs that decide what comes back. The store
# and embedder (often in LangChain's own tags already) are shown with --expand.
HEAD_REQUEST = frozenset({"k", "search_type", "score_threshold", "fetch_k"})
NAME_GIVE, QUERY_GIVE = 8, 12  # cells a run's name and query keep on a narrow terminal (with the 2 spaces before it)
ID_WIDTH, SOURCE_WIDTH = 24, 32  # at most, in the aligned document columns


class ShowOptions:
    """How much of each trace to show."""

    def __init__(self, *, docs: bool = True, max_docs: int | None = 5, full: bool = False,
                 expand: bool = False, traceback: bool = False, sort: str = "start", auto_tags: bool = False) -> None:
        self.docs = docs
        self.max_docs = max_docs
        self.full = full
        self.expand = expand
        self.traceback = traceback
        self.sort = sort  # siblings: "start" (as recorded), "duration" (slowest first) or "name"
        self.auto_tags = auto_tags  # LangChain's own tags (seq:step:N, map:key:K, ...) shown too


def _score(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
    return ""


def _source(meta: dict[str, Any]) -> str:
    for key in SOURCE_KEYS:
        if meta.get(key) not in (None, ""):
            return compact(meta[key], 40)
    return ""


def session_header(session: Any) -> Any:
    from rtrace.cli.render.lines import Line, Lines

    start = session.start or {}
    argv = start.get("argv")
    line = Line("").add("━━ ", "dim").add("session ", "bold").add(clean(session.session_id[:13], 13), "bold")
    if isinstance(argv, list) and argv:
        line.add("  " + clean(" ".join(str(a) for a in argv), 120, one_line=True), "bold", give=14)  # pid and time stay
    if isinstance(start.get("pid"), int):
        line.add(f"  pid {start['pid']}", "dim")
    if isinstance(start.get("ts"), str):  # the zone said once, here (local unless --utc)
        line.add(f"  {format_ts(start['ts'])} {zone_label(start['ts'])}", "dim")
    return Lines([line])


def session_footer(session: Any) -> Any:
    from rtrace.cli.render.lines import Line, Lines

    end = session.end or {}
    code = end.get("exit_code")
    line = Line("").add("━━ ", "dim").add("exit ", "dim")
    line.add(clean(code, 20, one_line=True) if code is not None else "?", "green" if code == 0 else "bold red")
    if isinstance(end.get("duration_ms"), (int, float)):
        line.add(f"  {ms(end['duration_ms'])}", "dim")
    err = end.get("error")
    if isinstance(err, dict):
        kind, message = clean(err.get("type", "?"), 40), clean(err.get("message") or "", 200, one_line=True)
        line.add(f"  {kind}: {message}" if message.strip() else f"  {kind}", "red")
    incomplete = end.get("incomplete_runs")
    if isinstance(incomplete, list) and incomplete:
        n = len(incomplete)
        line.add(f"  {n} run{'s' if n != 1 else ''} left incomplete", "magenta")
    return Lines([line, Line("")])


def trace_lines(selected: Any, opts: ShowOptions) -> Any:
    """One trace (or its matching runs) as tree lines."""
    from rtrace.cli.render.lines import Line, Lines

    out = Lines()
    highlight = selected.matched_ids if selected.matched is not selected.trace.runs and len(selected.matched) < len(selected.trace.runs) else set()
    roots = selected.matched if selected.runs_only else [selected.trace.root]
    for root in roots:
        _run_lines(root, out, opts, highlight, only=None if not selected.runs_only else {root.run_id})
    out.lines.append(Line(""))
    return out


def _run_lines(root: Any, out: Any, opts: ShowOptions, highlight: set[str], only: set[str] | None) -> None:
    """A run and its subtree, depth first with an explicit stack: runs nest deeper than Python recurses."""
    from rtrace.cli.render.lines import Line

    stack = [_open_run(root, "", "", 0, 0, out, opts, highlight, only)]
    while stack:
        try:
            kind, payload, branch, below, hidden, depth = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if kind == "child":
            stack.append(_open_run(payload, branch, below, hidden, depth + 1, out, opts, highlight, only))
        elif kind == "retry":
            out.lines.append(_retry_line(branch, payload))
        elif kind == "text":
            out.lines.append(Line(branch).add("✎ ", "dim").add(clean(payload.get("text", ""), 500, one_line=True), "italic"))
        elif kind == "custom":
            out.lines.append(Line(branch).add("◆ ", "blue").add(clean(payload.get("custom_name", "?"), 60, one_line=True), "blue")
                             .add("  " + compact(payload.get("data"), 300), "dim"))
        elif kind == "meta":
            k, v = payload
            out.lines.append(Line(branch).add(clean(k, 60, one_line=True), "dim").add(" = ").add(compact(v, 2000)))
        elif kind == "error":
            _error_lines(branch, _marked(below, hidden), payload, opts, out)
        elif kind == "doc":
            _doc_lines(branch, _marked(below, hidden), payload, opts, out)
        elif kind == "moves":
            out.lines.append(_moves_line(branch, payload))
        elif kind == "more":
            out.lines.append(Line(branch).add(f"… {payload} more document{'s' if payload != 1 else ''} (--max-docs)", "dim"))
        elif kind == "absent":  # dropped from the log after it was written (jq -c 'del(.documents)')
            n, listed = payload
            out.lines.append(Line(branch).add(f"… {n} {'more ' if listed else ''}document{'s' if n != 1 else ''} not in the log", "dim"))


def _marked(indent: str, hidden: int) -> str:
    return f"[+{hidden}] {indent}" if hidden else indent


def _guides(indent: str, hidden: int, last: bool) -> tuple[str, str, int]:
    """The guides of an item (its branch) and of what sits below it (``below``, ``hidden``).

    Past ``MAX_GUIDES`` levels the outer guides give way to a ``[+N]`` count, so a line's
    prefix (and the whole output) stays linear in the depth of the tree, not quadratic.
    """
    branch = _marked(indent, hidden) + ("└── " if last else "├── ")
    below = indent + ("    " if last else "│   ")
    if len(below) > 4 * MAX_GUIDES:
        below, hidden = below[4:], hidden + 1
    return branch, below, hidden


def _open_run(run: Any, lead: str, indent: str, hidden: int, depth: int, out: Any, opts: ShowOptions,
              highlight: set[str], only: set[str] | None) -> Any:
    """Append a run's head line; return the items below it, each with its guides and depth."""
    from rtrace.cli.render.lines import Line

    mark, mark_style = STATUS_MARK.get(run.status, ("?", ""))
    head = Line(lead)
    if run.run_id in highlight:
        head.add("» ", "bold yellow")
    head.add(mark + " ", mark_style)
    # The name, then the numbers; the text after them gives way first on a narrow terminal, then the name.
    head.add(clean(run.name, 60, one_line=True), KIND_STYLE.get(run.kind, "bold") + (" underline" if run.run_id in highlight else ""),
             give=NAME_GIVE)
    if run.kind != "retriever":
        head.add(f" ({clean(run.kind, 30, one_line=True)})", "dim")
    head.add("  " + ms(run.duration_ms) if run.duration_ms is not None else "", "yellow" if (run.duration_ms or 0) >= 1000 else "dim")
    if run.status == "incomplete":
        head.add("  incomplete", "magenta")
    # How many documents it returned, as its end says (the log may keep fewer): said once, here.
    returned = run.document_count if run.end is not None and run.kind == "retriever" and run.status == "ok" else None
    if returned is not None:
        head.add(f"  {returned} doc{'s' if returned != 1 else ''}", "green" if returned else "yellow")
    retries = len(run.retries)
    if retries:
        head.add(f"  ↻ {retries}", "yellow")
    if run.late:
        head.add(f"  (under {clean(run.parent_run_id[:13], 13, one_line=True)}…, shown earlier)", "dim italic")
    elif run.orphan:
        head.add("  (parent not in log)", "dim italic")
    if run.duplicate:
        head.add("  (repeated run id)", "dim italic")
    parent_query = run.parent.query if run.parent is not None and depth > 0 else None
    if run.query is not None and run.query != parent_query:  # the same query as the parent's is said once
        head.add("  “" + clean(run.query, 200, one_line=True) + "”", "", give=QUERY_GIVE)
    request = run.request  # what it asked of its store: why it returned what it did
    knobs = {k: v for k, v in request.items() if k in HEAD_REQUEST}
    if knobs:
        head.add("  " + key_values(knobs), "cyan", give=0)
    tags = run.tags if opts.auto_tags else user_tags(run.tags)
    if tags:
        head.add("  [" + ", ".join(clean(t, 30, one_line=True) for t in tags) + "]", "magenta", give=0)
    meta = {k: v for k, v in run.metadata.items() if opts.expand or not str(k).startswith(HIDDEN_META)}
    if meta and not opts.expand:
        head.add("  " + key_values(meta), "dim", give=0)
    out.lines.append(head)

    # Below the head: expanded metadata, error, timeline (retries, texts, custom events, children), documents.
    items: list[tuple[str, Any]] = []
    if opts.expand:  # the store and embedder asked (the head has the knobs), then the metadata
        for k, v in [*((k, v) for k, v in request.items() if k not in HEAD_REQUEST), *meta.items()]:
            items.append(("meta", (k, v)))
    children = iter(ordered_children(run, opts.sort))  # each child slot of the timeline, in --sort order
    for kind, payload in run.timeline:
        if kind == "child":
            if only is not None:
                continue
            payload = next(children)
        items.append((kind, payload))
    if run.error is not None:  # how the run ended: after everything that happened in it
        items.append(("error", run.error))
    moves = rerank_moves(run) if opts.docs else None
    if moves and any(m.moved != 0 for m in moves):  # a reranker: what it moved, before its documents
        items.append(("moves", moves))
    docs = run.documents if opts.docs else []
    shown_docs = docs if opts.max_docs is None else docs[: opts.max_docs]
    columns, texts = _doc_columns(shown_docs)
    for i, d in enumerate(shown_docs):
        items.append(("doc", (i + 1, d, columns, texts[i])))
    if len(shown_docs) < len(docs):
        items.append(("more", len(docs) - len(shown_docs)))
    if opts.docs and returned is not None and returned > len(docs):
        items.append(("absent", (returned - len(docs), bool(docs))))  # the head's count: the log keeps fewer

    return ((kind, payload, *_guides(indent, hidden, i == len(items) - 1), depth) for i, (kind, payload) in enumerate(items))


def _moves_line(branch: str, moves: list[Any]) -> Any:
    """What a reranker did to the documents it was given: moved up, down or dropped, biggest first."""
    from rtrace.cli.render.lines import Line

    line = Line(branch).add("⇅ reranked", "magenta")
    changed = sorted((m for m in moves if m.moved != 0), key=lambda m: (m.moved is None, -abs(m.moved or 0), m.before))
    kept = sum(1 for m in moves if m.moved is not None)
    line.add(f"  {kept} of {len(moves)} kept", "dim")
    for m in changed:
        what = "dropped" if m.moved is None else f"{'↑' if m.moved > 0 else '↓'}{abs(m.moved)}"
        line.add(f"  {clean(m.key, 40, one_line=True)} {what}", "dim" if m.moved is None else "", give=0)
    return line


def _retry_line(branch: str, ev: dict[str, Any]) -> Any:
    """Attempt, outcome and the wait before the next attempt first; what was raised gives way."""
    from rtrace.cli.render.lines import Line

    line = Line(branch).add("↻ ", "yellow").add(f"attempt {clean(ev.get('attempt', '?'), 20, one_line=True)}", "yellow")
    outcome = ev.get("outcome")
    if outcome:
        line.add(f" {clean(outcome, 20, one_line=True)}", "yellow")
    if _number(ev.get("next_sleep_s")):
        line.add(f"  wait {ev['next_sleep_s']:.3g} s", "yellow")
    if _number(ev.get("slept_s")):
        line.add(f"  slept {ev['slept_s']:.3g} s", "dim")
    exc = ev.get("exception")
    if isinstance(exc, dict):
        line.add(f"  {clean(exc.get('type', '?'), 40, one_line=True)}: {clean(exc.get('message', ''), 200, one_line=True)}",
                 "red", give=0)
    return line


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _error_lines(branch: str, below: str, err: dict[str, Any], opts: ShowOptions, out: Any) -> None:
    from rtrace.cli.render.lines import Line

    out.lines.append(Line(branch).add("✗ ", "bold red").add(clean(err.get("type", "Error"), 60, one_line=True), "bold red")
                     .add(": " + clean(err.get("message", ""), 1000, one_line=True), "red"))
    tb = err.get("traceback")
    if opts.traceback and isinstance(tb, str):
        for text in clean(tb).rstrip("\n").split("\n"):
            out.lines.append(Line(below + "  ", wrap=True).add(text, "red dim"))


def _doc_columns(docs: list[dict[str, Any]]) -> tuple[tuple[int, int, int, int], list[tuple[str, str, str]]]:
    """The columns of a run's shown documents: widths of rank, score, id and source, and each one's texts."""
    from rtrace.cli.render.lines import cells

    texts = [(_score(d.get("score")), clean(d["id"], ID_WIDTH, one_line=True) if d.get("id") is not None else "",
              _source(_meta(d))) for d in docs]
    score = max((len(t[0]) for t in texts), default=0)
    ids = max((cells(t[1]) for t in texts), default=0)
    sources = max((cells(t[2]) for t in texts), default=0)
    return (len(f"#{len(docs)}"), score, min(ids, ID_WIDTH), min(sources, SOURCE_WIDTH)), texts


def _meta(d: dict[str, Any]) -> dict[str, Any]:
    meta = d.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _doc_lines(branch: str, below: str, payload: tuple[int, dict[str, Any], tuple[int, int, int, int], tuple[str, str, str]],
               opts: ShowOptions, out: Any) -> None:
    """Rank, score, id, source and text in columns aligned over the run's documents; the text gives way first."""
    from rtrace.cli.render.lines import Line, fit_cells

    rank, d, (rank_w, score_w, id_w, source_w), (score, doc_id, source) = payload
    meta = _meta(d)
    line = Line(branch).add(f"#{rank}".ljust(rank_w), "bold")
    if score_w:
        line.add("  " + score.rjust(score_w), "green")
    if id_w:
        line.add("  " + fit_cells(doc_id, id_w), "cyan", give=2 + min(id_w, 6))
    if source_w:
        line.add("  " + fit_cells(source, source_w), "blue", give=2 + min(source_w, 6))
    content = d.get("page_content")
    content = content if isinstance(content, str) else ""
    if not opts.full:
        line.add("  " + clean(content, 300, one_line=True), "", give=0)
        if isinstance(d.get("content_length"), int):
            line.add(f" ({d['content_length']} chars recorded as {len(content)})", "dim")
    out.lines.append(_trimmed(line))
    if opts.full:
        for text in clean(content).split("\n"):
            out.lines.append(Line(below + "  ", wrap=True).add(text))
    if opts.expand:
        for k, v in meta.items():
            out.lines.append(Line(below + "  ", wrap=True).add(clean(k, 60, one_line=True), "dim").add(" = ").add(compact(v, 2000), "dim"))


def _trimmed(line: Any) -> Any:
    # Padding that ends a line (a document without text) is not printed.
    while line.spans and not line.spans[-1][0].strip():
        line.give.pop(len(line.spans) - 1, None)
        line.spans.pop()
    if line.spans:
        text, spec = line.spans[-1]
        line.spans[-1] = (text.rstrip(" "), spec)
    return line
