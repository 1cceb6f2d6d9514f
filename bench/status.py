#!/usr/bin/env python3
"""The status page's cost to the byte path (issue 24): hot relays of the
200 MB file with nobody watching `/ui/status`, and while four clients poll
its JSON back to back (thousands of open pages' worth), taking turns in one
run, with the same four clients polling `/health` (which takes no lock) as
the yardstick for what any requests at that rate cost the two cores; and
what one `GET /api/v2/system/status` costs (wrk -c10) beside
`/health`.

    bench/status.py [--downloads 15] [--no-write]

Writes bench/results/status-<date>.md and the table between the status
markers in BENCHMARKS.md.
"""
import argparse
import datetime
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: nginx, reelay, wrk, curl downloads)


def poller(url, stop, counts):
    """GETs `url` back to back until `stop` is set."""
    while not stop.is_set():
        with urllib.request.urlopen(url) as r:
            r.read()
        counts[0] += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--downloads", type=int, default=15)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    run.build()
    work, nginx = run.big_origin("reelay-bench-status-")
    origin = f"http://127.0.0.1:{nginx.port}"
    r = {"quiet": [], "watched": [], "health": []}
    try:
        app = run.Reelay(work, origin)
        app.first_200_ms()
        video = f"{app.base}/api/v2/stream/proxy/youtube/benchbenchb?quality=360p"
        run.download_mb_s(video, 1)  # into the store: the runs below are hot
        status = f"{app.base}/api/v2/system/status"
        polls = [0]
        def polled(url, rates):
            stop = threading.Event()
            threads = [threading.Thread(target=poller, args=(url, stop, polls)) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.2)
            started, before = time.perf_counter(), polls[0]
            speed = run.download_mb_s(video, 1)
            rates.append((polls[0] - before) / (time.perf_counter() - started))
            stop.set()
            for t in threads:
                t.join()
            return speed

        rates, health_rates = [], []
        for _ in range(args.downloads):
            r["quiet"].append(run.download_mb_s(video, 1))
            r["watched"].append(polled(status, rates))
            r["health"].append(polled(f"{app.base}/health", health_rates))
        r["poll_rates"], r["health_rates"] = rates, health_rates
        r["polls_per_s"] = statistics.median(r["poll_rates"])
        r["status_rps"] = run.wrk(status, 10, 5)["rps"]
        r["health_rps"] = run.wrk(f"{app.base}/health", 10, 5)["rps"]
        app.stop()
    finally:
        nginx.stop()
    quiet, watched = statistics.median(r["quiet"]), statistics.median(r["watched"])
    health = statistics.median(r["health"])
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = [
        ("hot relay of 200 MB, nobody on the status page",
         f"{quiet:,.0f} MB/s (range {min(r['quiet']):,.0f}–{max(r['quiet']):,.0f})"),
        ("the same while four clients poll its JSON back to back",
         f"{watched:,.0f} MB/s (range {min(r['watched']):,.0f}–{max(r['watched']):,.0f}) = {watched / quiet:.2f}× "
         f"(at {r['polls_per_s']:,.0f} polls/s during the downloads)"),
        ("yardstick: the same four clients polling `/health`",
         f"{health:,.0f} MB/s (range {min(r['health']):,.0f}–{max(r['health']):,.0f}) = {health / quiet:.2f}× "
         f"(at {statistics.median(r['health_rates']):,.0f} polls/s); status polls against these: {watched / health:.2f}×"),
        ("`GET /api/v2/system/status`, wrk -c10, beside `/health`",
         f"{r['status_rps']:,.0f} req/s = {r['status_rps'] / r['health_rps']:.2f}× `/health` ({r['health_rps']:,.0f})"),
    ]
    report = (f"Status run {now:%Y-%m-%d %H:%M} UTC (`bench/status.py`, medians of {args.downloads} downloads, "
              f"taking turns).\n\n{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("status", report, "The status page against the byte path")


if __name__ == "__main__":
    main()
