"""The commands: one small module per command or family. Only these print."""
