"""Everything rtrace changes in the process beyond the log, each install beside its undo."""
