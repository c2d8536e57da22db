"""rtrace.cli: the ``rtrace`` command (Typer app, Rich rendering)."""
