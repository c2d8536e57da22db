"""``rtrace replay``: send recorded events back through any callback handler."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from rtrace.core.errors import UsageError
from rtrace.core.read.pipeline import Source, report
from rtrace.core.read.reader import ReadStats, read_lines
from rtrace.core.read.trees import TreeBuilder


def load_handler(spec: str) -> Any:
    """``module:attr`` -> a handler instance (a class is instantiated with no arguments)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--handler takes module:attr, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise UsageError(f"--handler {spec}: cannot import {module_name}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"--handler {spec}: {module_name} has no {attr}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as e:
            raise UsageError(f"--handler {spec}: cannot create {attr}(): {e}") from None
    if not any(callable(getattr(obj, hook, None)) for hook in ("on_retriever_start", "on_retriever_end")):
        raise UsageError(f"--handler {spec}: {type(obj).__name__} is not a callback handler")
    return obj


def run_replay(source: Source, handler_specs: Sequence[str], speed: float | None) -> None:
    from rtrace.core.read.replay import Replayer

    if speed is not None and speed <= 0:
        raise UsageError(f"--speed must be above 0, not {speed}")
    handlers = [load_handler(spec) for spec in handler_specs]
    if not handlers:
        from rtrace.cli.console import make_console
        from rtrace.cli.render.live import ConsoleHandler

        handlers = [ConsoleHandler(make_console())]
    stats = ReadStats()
    replayer = Replayer(handlers, speed=speed)
    try:
        replayer.replay(read_lines(source.paths, lenient=source.lenient, stats=stats))
    except KeyboardInterrupt:
        pass
    finally:
        for handler in handlers:
            close = getattr(handler, "close", None)
            if callable(close) and hasattr(handler, "session_id"):  # a JsonlHandler: write its session_end
                close(exit_code=0)
    report(stats, TreeBuilder(), source, replayer.stats.events > 0)
    from rtrace.core.errors import warn

    if replayer.stats.skipped:
        warn(f"skipped {replayer.stats.skipped} event{'s' if replayer.stats.skipped != 1 else ''} without an event name "
             "or whose run id is not a UUID")
    for what, count in sorted(replayer.stats.warnings.items()):
        warn(f"{count} {what}")
