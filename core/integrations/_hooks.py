"""Running a callback right after a module is first imported (the framework hooks' trigger).

``when_imported(name, callback, framework)`` calls ``callback(module)`` now when
``name`` is already imported, else the moment its import finishes. One finder on
``sys.meta_path`` serves every pending name and leaves once none is pending, so a
script that never imports a framework pays one dict lookup per import, nothing else.
A callback that raises (a framework version whose API differs) turns into one
warning line naming the framework; the import itself always succeeds.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]

_lock = threading.RLock()
_pending: dict[str, list[tuple[Callback, str]]] = {}


def when_imported(name: str, callback: Callback, framework: str) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        _call(callback, module, framework)
        return
    with _lock:
        _pending.setdefault(name, []).append((callback, framework))
        if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _PostImportFinder())


def cancel(name: str, callback: Callback) -> None:
    """Forget a callback still waiting for ``name``."""
    with _lock:
        entries = [e for e in _pending.get(name, []) if e[0] != callback]
        if entries:
            _pending[name] = entries
        else:
            _pending.pop(name, None)
        if not _pending:
            _remove_finder()


def is_pending(name: str, callback: Callback) -> bool:
    with _lock:
        return any(e[0] == callback for e in _pending.get(name, []))


def _remove_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PostImportFinder)]


def _call(callback: Callback, module: ModuleType, framework: str) -> None:
    try:
        callback(module)
    except Exception as e:  # tracing must never break the import, nor the program
        from rtrace.core.errors import warn

        warn(f"{framework} tracing is off: {e!r}")


def _notify(name: str, module: ModuleType) -> None:
    with _lock:
        entries = _pending.pop(name, [])
        if not _pending:
            _remove_finder()
    for callback, framework in entries:
        _call(callback, module, framework)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of a pending module to notify after it runs."""

    def __init__(self) -> None:
        self._finding = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending:
            return None
        finding = self._finding.__dict__.setdefault("names", set())
        if fullname in finding:  # another finder asking the meta path: let it get the plain spec
            return None
        finding.add(fullname)
        try:
            for finder in list(sys.meta_path):  # the spec the other finders would have given
                if finder is self or isinstance(finder, _PostImportFinder):
                    continue
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find else None
                if spec is not None:
                    break
            else:
                return None
        finally:
            finding.discard(fullname)
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_notify(module: ModuleType) -> None:
            exec_module(module)
            _notify(fullname, module)

        # File loaders are made per module, so this changes only this module's loading.
        loader.exec_module = exec_and_notify  # type: ignore[union-attr, method-assign]
        return spec
