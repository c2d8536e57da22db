"""Renderers: pure functions from recorded data to Rich renderables; one per module."""
