"""How the web app shares the CPU among browser clients: frames/s each, for 1, 2, 4, ... clients.

Starts ``python -m realtime.web`` (as a user would) and, for each client count, streams
demo-clip frames (640x480 JPEG, as the page sends them) from that many WebSocket clients
at once, each with one frame in flight (the page's own pacing), for ``--seconds``.
Reports each client's frames/s, their total, the slowest client's share of the fastest's
and the median round-trip latency; ``--http`` posts to ``/api/detect`` instead.

    python -m benchmarks.web_clients --clients 1 2 4 8 --seconds 10 --json benchmarks/results/web_clients.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Sequence

import cv2

from benchmarks.web_tools import demo_frames, serve


def frames_jpeg(n: int) -> list[bytes]:
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for f in demo_frames(n)]


def stream_ws(url: str, frames: list[bytes], start: threading.Barrier, stop: threading.Event,
              out: dict[str, Any]) -> None:
    from websockets.sync.client import connect

    lat: list[float] = []
    with connect(url, open_timeout=300, max_size=None) as ws:
        start.wait()
        t0 = time.perf_counter()
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            ws.send(frames[i % len(frames)])
            json.loads(ws.recv(timeout=300))
            lat.append((time.perf_counter() - t) * 1000.0)
            i += 1
        out.update(frames=i, seconds=time.perf_counter() - t0, latencies=lat)


def stream_http(url: str, frames: list[bytes], start: threading.Barrier, stop: threading.Event,
                out: dict[str, Any]) -> None:
    # http.client with keep-alive, the frame as the raw body: httpx's sync client added
    # ~40 ms to every request on this machine (even GET /api/health), urllib 1 ms
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    lat: list[float] = []
    start.wait()
    t0 = time.perf_counter()
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        conn.request("POST", "/api/detect", body=frames[i % len(frames)], headers={"Content-Type": "image/jpeg"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {body[:200]!r}")
        lat.append((time.perf_counter() - t) * 1000.0)
        i += 1
    conn.close()
    out.update(frames=i, seconds=time.perf_counter() - t0, latencies=lat)


def measure(url: str, clients: int, seconds: float, frames: list[bytes], http: bool) -> dict[str, Any]:
    """``clients`` streams at once for ``seconds``: each one's frames/s and latency."""
    target = stream_http if http else stream_ws
    endpoint = url if http else url.replace("http://", "ws://") + "/ws/live"
    start, stop = threading.Barrier(clients + 1), threading.Event()
    outs: list[dict[str, Any]] = [{} for _ in range(clients)]
    threads = [threading.Thread(target=target, args=(endpoint, frames, start, stop, o)) for o in outs]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    fps = [o["frames"] / o["seconds"] for o in outs]
    lat = [v for o in outs for v in o["latencies"]]
    return {"clients": clients, "fps_each": [round(v, 1) for v in fps], "fps_total": round(sum(fps), 1),
            "fairness": round(min(fps) / max(fps), 3), "latency_ms_median": round(statistics.median(lat), 1),
            "latency_ms_p90": round(statistics.quantiles(lat, n=10)[-1], 1) if len(lat) > 10 else None}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.web_clients", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8], help="client counts to measure")
    p.add_argument("--seconds", type=float, default=10.0, help="streaming time per client count")
    p.add_argument("--workers", type=int, default=None, help="the server's recognizers (default: its own, one per core)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the client counts, interleaved, this many times")
    p.add_argument("--http", action="store_true", help="POST /api/detect instead of the WebSocket")
    p.add_argument("--json", default=None, help="write the figures here")
    a = p.parse_args(argv)
    if min(a.clients) < 1 or a.seconds <= 0 or a.rounds < 1:
        p.error("--clients, --seconds and --rounds must be positive")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    frames = frames_jpeg(30)
    rows = []
    with serve(workers=a.workers) as srv:
        with urllib.request.urlopen(srv.url + "/api/health", timeout=300) as r:
            health = json.load(r)
        print(f"server {srv.url}: {health['workers']} recognizers; {'HTTP' if a.http else 'WebSocket'} clients, "
              f"{a.seconds:.0f} s each", file=sys.stderr)
        print("clients  fps total  fps each (min-max)  slowest/fastest  latency median / p90 ms")
        for rnd in range(a.rounds):
            for n in a.clients:
                row = measure(srv.url, n, a.seconds, frames, a.http)
                row["round"] = rnd
                rows.append(row)
                each = row["fps_each"]
                print(f"{n:>7}  {row['fps_total']:>9.1f}  {min(each):>8.1f}-{max(each):<8.1f}  "
                      f"{row['fairness']:>15.2f}  {row['latency_ms_median']:>8.1f} / {row['latency_ms_p90']}",
                      flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"workers": health["workers"], "http": a.http, "seconds": a.seconds,
                                            "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
