"""`callbrief serve`: the nightly flow as a deployment on a real Prefect server, on a cron in the
centre's time zone.

Prefect's temporary (ephemeral) server does not run schedules, so serving needs a real one: the
one PREFECT_API_URL points at, or one started here (`prefect server start` on 127.0.0.1, state
in PREFECT_HOME, analytics off) and stopped when serving stops.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def prefect_server(port: int = 4200, wait_seconds: float = 180.0) -> Iterator[str]:
    """The API URL of a running Prefect server: PREFECT_API_URL's if it answers, else one started here."""
    given = os.environ.get("PREFECT_API_URL")
    if given:
        if not healthy(given):
            raise RuntimeError(f"PREFECT_API_URL={given} does not answer: start that server or unset the variable")
        yield given
        return
    url = f"http://127.0.0.1:{port}/api"
    if healthy(url):
        yield url
        return
    env = os.environ | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": ""}
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"  # a file, not a pipe: an unread pipe would fill and stall the server
    log_file = log_path.open("a")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log_file, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + wait_seconds
        while not healthy(url):
            if server.poll() is not None:
                raise RuntimeError(f"prefect server did not start: see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not answer on {url} within {wait_seconds:.0f} s")
            time.sleep(1)
        yield url
    finally:
        # The server runs in its own session (its workers too): stop the whole group, not one process.
        _stop_group(server)
        log_file.close()


def _stop_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def serve_nightly(cron: str, timezone: str, parameters: dict, port: int = 4200) -> None:
    """Register the nightly deployment with its schedule and run what the schedule creates."""
    with prefect_server(port) as api_url:
        os.environ["PREFECT_API_URL"] = api_url  # read by the client when the flow serves
        # Imported once the server's address is set: the client reads it when it is first loaded.
        from prefect.schedules import Cron

        from flows.nightly import nightly  # the flow's client, against the server above

        print(f"serving nightly on cron '{cron}' ({timezone}) at {api_url.removesuffix('/api')} (Ctrl-C to stop)",
              flush=True)
        nightly.serve(name="callbrief-nightly", schedules=[Cron(cron, timezone=timezone)], parameters=parameters,
                      print_starting_message=False)
