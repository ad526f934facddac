"""Run the browser test of the demo: make tiny inputs, serve the app on 127.0.0.1, drive it with headless Chromium.

    python tests/ui/run_browser_test.py [--out out/ui-test] [--screenshots out/ui-screenshots]

Needs Debian's ``chromium`` and ``npm ci`` in tests/ui (``make test-ui`` does both). Screenshots of the main
screens are written to ``--screenshots``; the server's log and the projects it made stay in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the demo did not answer on {url} within {timeout:.0f} s")


def stop_jobs(projects: Path) -> None:
    """Stop any background job the test left running (they run in their own process groups)."""
    from voicetwin.production import jobs
    for folder in projects.glob("*/jobs"):
        for state in jobs.list_jobs(folder):
            if state.active:
                jobs.cancel(folder, state.id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/ui-test")
    parser.add_argument("--screenshots", default="out/ui-screenshots")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--build-steps", default="4", help="training steps of the test voice (flow, not quality)")
    args = parser.parse_args()

    if not Path(args.chromium).exists():
        raise SystemExit(f"{args.chromium} not found (apt-get install -y --no-install-recommends chromium)")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        raise SystemExit("playwright-core is not installed (cd tests/ui && npm ci)")
    sys.path.insert(0, str(HERE))
    from make_inputs import main as make_inputs

    out = Path(args.out).resolve()
    started = time.time()
    inputs = make_inputs(out / "inputs")
    print(f"inputs ready in {time.time() - started:.0f} s", flush=True)
    projects = out / "projects"
    shutil.rmtree(projects, ignore_errors=True)
    shots = Path(args.screenshots).resolve()
    shutil.rmtree(shots, ignore_errors=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    log = open(out / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "voicetwin", "demo", "--project-dir", str(projects),
                               "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(url, 120)
        print(f"demo serving on {url} after {time.time() - started:.0f} s", flush=True)
        test_env = dict(env, DEMO_URL=url, INPUTS=str(inputs), SHOTS=str(shots), CHROMIUM=args.chromium,
                        BUILD_STEPS=str(args.build_steps))
        rc = subprocess.run(["node", "demo.test.mjs"], cwd=HERE, env=test_env, timeout=900).returncode
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        stop_jobs(projects)
    if rc != 0:  # the server's side of the failure, for a log that is all one gets (CI)
        tail = (out / "server.log").read_text(errors="replace").splitlines()[-40:]
        print("server log (last lines):\n" + "\n".join(f"  {line}" for line in tail), flush=True)
    print(f"browser test {'passed' if rc == 0 else 'FAILED'} in {time.time() - started:.0f} s; screenshots in {shots}"
          + ("" if rc == 0 else f"; server log: {out / 'server.log'}"), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
