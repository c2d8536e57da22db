"""``rtrace ls``: the runs recorded in the nearest ``.rtrace/``; ``--prune KEEP`` drops old logs."""

from __future__ import annotations

import orjson
from rtrace.core.errors import LogError, UsageError, tell
from rtrace.core.store import RUN_DIR, display_path, find_run_dir, list_runs, prune

LS_FORMATS = ("table", "json")


def run_ls(limit: int | None, keep: int | None, fmt: str) -> None:
    from rtrace.cli.render.ls import reference

    if fmt not in LS_FORMATS:
        raise UsageError(f"--format is one of {', '.join(LS_FORMATS)}, not {fmt!r}")
    run_dir = find_run_dir()
    if run_dir is None:
        raise LogError(f"no runs recorded here yet (no {RUN_DIR}/ in this directory or its parents): "
                       "try `rtrace run script.py`")
    if keep is not None:
        done = prune(keep, run_dir)
        deleted, unlisted = done.deleted, done.unlisted
        said = f"deleted {len(deleted)} log{'s' if len(deleted) != 1 else ''}"
        if unlisted:
            said += f", unlisted {unlisted} -o log{'s' if unlisted != 1 else ''} (the files are left alone)"
        tell(f"rtrace: {said}; kept the {keep} newest run{'s' if keep != 1 else ''}")
        if done.live:
            n = len(done.live)
            tell(f"rtrace: kept {n} older log{'s' if n != 1 else ''} still being written: "
                 f"{', '.join(display_path(p) for p in done.live)}")
    runs = list_runs(run_dir)
    shown = runs[:limit] if limit is not None else runs
    if fmt == "json":
        from rtrace.cli.console import standard_output

        items = [{"ref": reference(i), **run.as_dict()} for i, run in enumerate(shown)]
        standard_output().buffer.write(orjson.dumps(items, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if not shown:
        tell(f"rtrace: no runs recorded in {run_dir}")
        return
    from rtrace.cli.console import make_console
    from rtrace.cli.render.ls import runs_table

    console = make_console()
    console.print(runs_table(shown, console.width))
