"""`archi notebook serve`: what a notebook's container runs. JupyterLab listens on the published
unix socket (no network: the cluster's API server proxies to it, after checking the user's token,
so the lab's own token check is off and cross-site requests are stopped by the proxy's cookie);
this process watches the lab's last activity and stops it once it has been idle for the timeout,
then exits 0 so the container completes and its notebooks (/out) are saved."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

STOP_SECONDS = 20.0  # how long the lab may take to shut down before it is killed


def lab_command(sock: str, base_url: str, root: str) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.sock={sock}",
            "--ServerApp.sock_mode=0600", f"--ServerApp.base_url={base_url}", f"--ServerApp.root_dir={root}",
            "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
            "--ServerApp.allow_remote_access=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
            "jupyterlab.NeverCheckForUpdate", "--ServerApp.terminals_enabled=True"]


def last_activity(sock: str, base_url: str) -> float | None:
    """When the lab last saw a request or a busy kernel (its /api/status, which is not itself
    counted), as a timestamp; None if it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(sock)
            conn.sendall(f"GET {base_url}api/status HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        status = json.loads(data.split(b"\r\n\r\n", 1)[1])
        return datetime.fromisoformat(status["last_activity"].replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, KeyError, IndexError):
        return None


def serve(sock: str, base_url: str, root: str, idle_seconds: float) -> int:
    Path(sock).unlink(missing_ok=True)
    lab = subprocess.Popen(lab_command(sock, base_url, root))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    check = max(0.5, min(idle_seconds / 4, 10.0))
    while lab.poll() is None and not stopping:
        time.sleep(check)
        seen = last_activity(sock, base_url)
        if seen is not None and time.time() - seen > idle_seconds:
            print(f"notebook idle for {idle_seconds:.0f} s: stopping; notebooks are saved as the output",
                  file=sys.stderr, flush=True)
            break
    if lab.poll() is None:
        lab.send_signal(signal.SIGTERM)
        try:
            lab.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
    print(f"notebook stopped (lab exit code {lab.returncode})", file=sys.stderr, flush=True)
    return 0
