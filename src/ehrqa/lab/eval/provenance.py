"""Where a number comes from: the code version that produced it."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime

from ehrqa import __version__


def git_commit() -> str:
    """The checkout's commit (with ``-dirty`` when it has changes), or ``unknown``."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev


def run_provenance(commit: str) -> dict[str, str]:
    """The fields every report's manifest starts with: version, commit, time, machine."""
    return {
        "ehrqa": __version__,
        "git_commit": commit,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
    }
