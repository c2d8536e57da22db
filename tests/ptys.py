"""Running rtrace with its output on a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> bytes:
    """Run rtrace with stdout and stderr on a pty; return every byte that reached the terminal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rtrace.cli", *args], cwd=cwd, stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    try:
        return read_until_closed(master)
    finally:
        proc.wait(timeout=60)
        os.close(master)


def read_until_closed(master: int) -> bytes:
    """Everything written to a pty until its last writer is gone."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
