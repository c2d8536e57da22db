"""Replacing one attribute of a module or class, and putting the original back.

``uninstall`` restores the original only while our replacement is still in place:
a library that wrapped it after us keeps its wrapper (ours then passes calls through).
"""

from __future__ import annotations

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
