"""Recursion headroom: the frames ``rtrace run`` keeps below the script cost it nothing.

Python counts every frame against ``sys.getrecursionlimit()``; the script runs a few
frames deeper under ``rtrace run`` than under ``python``. While it runs, the real
limit is raised by that many frames and ``sys.getrecursionlimit`` /
``sys.setrecursionlimit`` report and take the limit the script would see under python,
so the depth it can reach, and the limit it reads, are python's. (Threads start at
depth 0, so they get that many frames more than under python, never fewer.)
"""

from __future__ import annotations

import operator
import sys
from typing import Any

from rtrace.core.process.patching import Patch

_extra = 0


def _getrecursionlimit() -> int:
    return _GET.original() - _extra


def _setrecursionlimit(limit: int) -> None:
    limit = operator.index(limit)
    if limit < 1:
        raise ValueError("recursion limit must be greater or equal than 1")
    _SET.original(limit + _extra)


_getrecursionlimit.__doc__ = sys.getrecursionlimit.__doc__
_setrecursionlimit.__doc__ = sys.setrecursionlimit.__doc__
_GET = Patch(sys, "getrecursionlimit", _getrecursionlimit)
_SET = Patch(sys, "setrecursionlimit", _setrecursionlimit)
PATCHES = (_GET, _SET)


def _probe(n: int = 0) -> int:
    try:
        return _probe(n + 1)
    except RecursionError:
        return n


def depth() -> int:
    """How deep the caller runs, as the recursion limit counts it (C-level calls included).

    Measured, not counted from frames: calls that pass through C (a framework's
    callback) cost a level each without a frame of their own.
    """
    return sys.getrecursionlimit() - _probe() - 1


def install(extra: int) -> None:
    """Give the script ``extra`` more frames of real limit, reporting python's."""
    global _extra
    if extra <= 0 or _GET.installed:
        return
    limit = sys.getrecursionlimit()
    _extra = extra
    sys.setrecursionlimit(limit + extra)
    for patch in PATCHES:
        patch.install()


def uninstall() -> None:
    global _extra
    if not _GET.installed:
        return
    limit = sys.getrecursionlimit()  # as the script last set it
    for patch in PATCHES:
        patch.uninstall()
    _extra = 0
    try:
        sys.setrecursionlimit(limit)
    except (RecursionError, ValueError):
        pass
