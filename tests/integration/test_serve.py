"""`callbrief serve` registers the nightly deployment on a real Prefect server, and the server
schedules runs on the cron, in the centre's time zone."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_creates_scheduled_runs_on_a_real_server(tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--cron", "30 2 * * *", "--timezone",
                             "Asia/Shanghai", "--port", str(port), "--db", str(tmp_path / "db.duckdb")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        runs = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not runs:
            time.sleep(3)
            assert proc.poll() is None, proc.stdout.read()
            try:
                reply = httpx.post(f"{api}/flow_runs/filter", json={
                    "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}, "limit": 10}, timeout=10)
            except httpx.HTTPError:
                continue
            runs = reply.json() if reply.status_code == 200 else []
        assert runs, "no scheduled run was created"
        deployment = httpx.get(f"{api}/deployments/{runs[0]['deployment_id']}", timeout=10).json()
        assert deployment["name"] == "callbrief-nightly"
        assert deployment["parameters"]["db_path"] == str(tmp_path / "db.duckdb")
        for run in runs:  # 02:30 in Beijing, whatever zone the server stores it in
            when = datetime.fromisoformat(run["expected_start_time"]).astimezone(ZoneInfo("Asia/Shanghai"))
            assert (when.hour, when.minute) == (2, 30)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
