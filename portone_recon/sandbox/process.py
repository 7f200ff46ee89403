"""``portone-recon sandbox serve`` in a child process, for tests, benchmarks and rehearsals.

with serve_in_subprocess("--subscribers", "300", "--months", "13") as info:
    client = PortOneClient(imp_key=info["imp_key"], imp_secret=info["imp_secret"],
                           api_base=info["base_url"])
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from portone_recon.errors import SandboxError


@contextmanager
def serve_in_subprocess(*args: str, stop_timeout: float = 10.0) -> Iterator[dict[str, Any]]:
    """Start ``sandbox serve --port 0 ARGS``; yield its ready line (base_url, imp_key, imp_secret).

    The server is stopped with SIGTERM on exit (killed if it does not stop within ``stop_timeout``).

    Raises:
        SandboxError: the server exited before printing its ready line (its stderr is in the message).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "portone_recon", "sandbox", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server listens (after any scenario generation)
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise SandboxError(f"sandbox serve did not start: {err.strip() or 'no output'}")
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
