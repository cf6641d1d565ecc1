"""A Prefect API for the flow: the configured one, or a local server started for this run.

Prefect's temporary in-process server drops task-run records when the process
exits; a `prefect server start` process keeps them. So where no API URL is set,
a real server is started on 127.0.0.1 with its database in the run's state
folder, and stopped when the run ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from saladpipe.data_schemas.errors import SaladpipeError

logger = logging.getLogger("saladpipe")

STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def local_prefect_server(state_dir: Path) -> Iterator[str]:
    """Start `prefect server start` on a free loopback port; yield its API URL; stop it."""
    home = state_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_API_URL": "",
    }
    log_path = home / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
                "--analytics-off",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                raise SaladpipeError(f"local Prefect server exited at start; see {log_path}")
            if time.monotonic() > deadline:
                raise SaladpipeError(
                    f"local Prefect server not healthy after {STARTUP_TIMEOUT_S:.0f} s; "
                    f"see {log_path}"
                )
            time.sleep(0.25)
        logger.info("local Prefect server at %s (database in %s)", url, home)
        yield url
    finally:
        _stop(process)


def _die_with_parent() -> None:
    """In the server's child process: have the kernel stop it when the run dies, even
    by SIGKILL (Linux `PR_SET_PDEATHSIG`), so that no orphaned server keeps the port
    and the database; a resumed run starts its own."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def prefect_api(configured_url: str | None, state_dir: Path) -> Iterator[str]:
    """Use the config's URL, else PREFECT_API_URL, else a local server; set it for the client."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = configured_url or os.environ.get("PREFECT_API_URL") or None
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(local_prefect_server(state_dir))
        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
        stack.callback(_drain_to_api)
        yield url


def _drain_to_api(timeout_s: float = 10.0) -> None:
    """Send buffered logs and events while the server still runs, not at interpreter exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout_s, at_exit=False)
    EventsWorker.drain_all(timeout=timeout_s, at_exit=False)
