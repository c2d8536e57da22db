"""What `rtrace run` prints after the script, and its `--live` status line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtrace.cli.render.text import clean, ms

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rtrace.core.read.summary import RunSummary


def summary(s: RunSummary, log: str, show_command: str) -> RenderableType:
    """What ``rtrace run`` prints after the script: counts, slowest runs, where the log is.

    Counts wrap between themselves, never inside one; in the slowest runs the
    names and queries give way, the durations stay whole at any width.
    """
    from rtrace.cli.render.lines import Flow, Line, Lines

    def plural(n: int, word: str, many: str | None = None) -> str:
        return f"{n} {word if n == 1 else many or word + 's'}"

    parts = [("rtrace: " + f"{plural(s.runs, 'run')} in {plural(s.roots, 'trace')}", "bold"),
             (plural(s.errors, "error"), "red" if s.errors else ""),
             (plural(s.retries, "retry", "retries"), "yellow" if s.retries else ""),
             (plural(s.documents, "document"), "")]
    if s.incomplete:
        parts.append((f"{s.incomplete} incomplete", "magenta"))
    if s.duration_ms is not None:
        parts.append((ms(s.duration_ms), ""))
    out = Lines([Flow(parts)])
    slow = s.slowest
    if slow:
        took = [ms(run.duration_ms) for run in slow]
        names = [clean(run.name, 30, True) for run in slow]
        tw, nw = max(map(len, took)), max(map(len, names))
        for i, (run, t, name) in enumerate(zip(slow, took, names)):
            line = Line("").add("  slowest  " if i == 0 else "           ", "")
            line.add(t.rjust(tw), "yellow" if run.duration_ms >= 1000 else "")
            line.add("  " + name.ljust(nw), "red" if run.status == "error" else "cyan", give=2 + min(nw, 6))
            if run.query is not None:
                line.add("  " + clean(run.query, 80, True), "dim", give=0)
            out.lines.append(line)
    out.lines.append(Line("").add("  log    ").add(log, "bold"))
    out.lines.append(Line("").add("  see it ").add(show_command, "bold green"))
    return out


def status_text(s: RunSummary) -> str:
    """The ``--live`` status line: counters, then the newest run still in flight."""
    runs = s.snapshot_in_flight()
    text = (f"rtrace ⋯ {s.runs} run{'s' if s.runs != 1 else ''} · {s.errors} error{'s' if s.errors != 1 else ''}"
            f" · {s.retries} retr{'ies' if s.retries != 1 else 'y'} · {len(runs)} in flight")
    if runs:
        newest = runs[-1]
        text += "  " + clean(newest.get("name") or "?", 30, True)
        if newest.get("query") is not None:
            text += " “" + clean(newest["query"], 60, True) + "”"
        if newest.get("retries"):
            text += f" ↻{newest['retries']}"
    return text
