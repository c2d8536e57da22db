"""Replacing one attribute of a module or class, and putting the original back.

``uninstall`` restores the original only while our replacement is still in place:
a library that wrapped it after us keeps its wrapper (ours then passes calls through).
``SharedPatches``: a set of patches several users share, in place from the first
``acquire`` to the last ``release``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class Patch:
    """``owner.attr = replacement`` while installed; the original object back after."""

    def __init__(self, owner: Any, attr: str, replacement: Any) -> None:
        self.owner = owner
        self.attr = attr
        self.replacement = replacement
        self.original: Any = None
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        self.original = getattr(self.owner, self.attr)
        setattr(self.owner, self.attr, self.replacement)
        self.installed = True

    def uninstall(self) -> None:
        if not self.installed:
            return
        self.installed = False
        if getattr(self.owner, self.attr) is self.replacement:
            setattr(self.owner, self.attr, self.original)

    def call_original(self, *args: Any, **kwargs: Any) -> Any:
        return self.original(*args, **kwargs)

    def __repr__(self) -> str:
        owner = getattr(self.owner, "__name__", repr(self.owner))
        return f"Patch({owner}.{self.attr}, installed={self.installed})"


class SharedPatches:
    """Patches installed with their first user and uninstalled with their last (counted, thread-safe).

    ``patches`` makes them on first use (it may import what they patch); ``on_last`` runs after
    the last user's uninstall. ``users`` is read by the replacements: 0 means pass through.
    """

    def __init__(self, patches: Callable[[], Sequence[Patch]], on_last: Callable[[], None] | None = None) -> None:
        self._patches = patches
        self._on_last = on_last
        self._lock = threading.Lock()
        self.users = 0

    def acquire(self) -> None:
        with self._lock:
            self.users += 1
            if self.users == 1:
                for patch in self._patches():
                    patch.install()

    def release(self) -> None:
        with self._lock:
            if self.users == 0:
                return
            self.users -= 1
            if self.users == 0:
                for patch in self._patches():
                    patch.uninstall()
                if self._on_last is not None:
                    self._on_last()
