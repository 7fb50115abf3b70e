"""The shared shape of a benchmark's markdown report: a dated heading naming the machine, the command that made
it, and where it goes (appended to a results file, and printed)."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import UTC, datetime


def heading(title: str = "") -> str:
    """`## <UTC date>, [title, ]<processor>, <N> CPUs, CPU only`."""
    machine = platform.processor() or platform.machine()
    return f"## {datetime.now(UTC):%Y-%m-%d}, {title + ', ' if title else ''}{machine}, {os.cpu_count()} CPUs, CPU only"


def command_line() -> str:
    """This benchmark's own command, as run."""
    return f"Command: `{shlex.join([sys.executable, *sys.argv])}`"


def load() -> float:
    """The 1-minute load average (recorded beside every timing: the machine is shared)."""
    return os.getloadavg()[0]


def publish(text: str, results: str) -> None:
    """Print the report and, unless `results` is '-', append it to that markdown file."""
    if results != "-":
        with open(results, "a") as f:
            f.write(text + "\n")
    print(text)
