#!/usr/bin/env python3
"""A soak: reelay (release build) under mixed traffic for --minutes (default
30): lookups of new videos, hot info, ranged proxy reads of a 64 MiB file,
players that hang up after their first piece, an origin that cuts every
response after 5 MB, merges (most viewers leave early), removed videos and
bad ids. Every 10 s it records RSS, open file descriptors, child processes
and runtime tasks; after warm-up (the first fifth) it fits a line to each and
reports the slope per hour. A flat curve is the target. Cached info lives
5 minutes (VIDEO_INFO_TTL=300), so the caches are at their steady size by the
end of warm-up (the first fifth; at least 6 minutes of a 30-minute run). At the end, after the
traffic stops, no yt-dlp or ffmpeg may be left.

  bench/soak.py [--minutes 30] [--no-write]

Writes bench/results/soak-<date>.md and the soak table in BENCHMARKS.md.
"""

import argparse
import asyncio
import datetime
import os
import random
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

import run as bench  # bench/run.py: nginx, the cut origin, reelay, media

ROOT = bench.ROOT
CLIENTS = 12


def children(pid):
    """Descendant processes of pid: [(pid, name)]."""
    procs = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
        name = re.search(r"^Name:\s+(.*)$", status, re.M).group(1)
        procs[int(p)] = (ppid, name)
    found, parents = [], [pid]
    while parents:
        parent = parents.pop()
        for p, (ppid, name) in procs.items():
            if ppid == parent:
                found.append((p, name))
                parents.append(p)
    return found


def sample(app):
    text = bench.get(f"{app.base}/metrics")[1].decode()

    def metric(name):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else -1

    return {
        "rss": bench.rss_mb(app.proc.pid),
        "fds": len(os.listdir(f"/proc/{app.proc.pid}/fd")),
        "children": len(children(app.proc.pid)),
        "tasks": metric("reelay_runtime_tasks"),
        "store": metric("reelay_relay_store_bytes") / 1e6,
    }


def slope_per_hour(points):
    """Least-squares slope of [(seconds, value)], per hour."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


async def client(host, port, n0, stop, counts):
    """One client of the mix, over raw HTTP/1.1 (keep-alive off)."""
    n = n0
    while not stop.is_set():
        kind = n % 8
        headers = ""
        if kind == 0:
            path = f"/api/v2/videos/youtube/{bench_id('soaknew')}"
        elif kind in (1, 2):
            path = "/api/v2/videos/youtube/soakhotinfo"
        elif kind == 3:
            start = random.randrange(0, 60 << 20)
            path, headers = "/api/v2/stream/proxy/youtube/bench64soak?quality=360p", f"Range: bytes={start}-{start + (1 << 20)}\r\n"
        elif kind == 4:
            path = "/api/v2/stream/proxy/youtube/benchcutsoa?quality=360p"
        elif kind == 5:
            path = f"/api/v2/stream/proxy/youtube/{'benchmrgsoa' if n % 16 else bench_id('benchmrg')}?quality=720p"
        elif kind == 6:
            path = f"/api/v2/stream/direct/youtube/{bench_id('unavailabl')}"
        else:
            path = "/api/v2/videos/youtube/bad"
        read_all = kind in (0, 1, 2, 3, 6, 7) or (kind == 5 and n % 16 == 0)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n{headers}\r\n".encode())
            await writer.drain()
            if read_all:
                while await asyncio.wait_for(reader.read(1 << 20), 60):
                    pass
            else:
                await asyncio.wait_for(reader.read(64 * 1024), 60)  # the first piece, then hang up
            writer.close()
            counts["ok"] += 1
        except (OSError, asyncio.TimeoutError):
            counts["errors"] += 1
        n += CLIENTS


def bench_id(prefix):
    """A new 11-character id with `prefix`."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(random.choice(alphabet) for _ in range(11 - len(prefix)))


async def soak(app, minutes):
    stop = asyncio.Event()
    counts = {"ok": 0, "errors": 0}
    clients = [asyncio.create_task(client("127.0.0.1", app.port, i, stop, counts)) for i in range(CLIENTS)]
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < minutes * 60:
        await asyncio.sleep(10)
        s = await asyncio.to_thread(sample, app)
        s["t"] = time.monotonic() - t0
        s["requests"] = counts["ok"]
        samples.append(s)
        bench.log(f"soak: {s['t']:5.0f} s  rss {s['rss']:6.1f} MB  fds {s['fds']:4}  children {s['children']:2}  "
                  f"tasks {s['tasks']:5.0f}  store {s['store']:5.1f} MB  requests {counts['ok']}  errors {counts['errors']}")
    stop.set()
    await asyncio.gather(*clients)
    # Let merges and extractions end; then nothing may be left.
    deadline = time.monotonic() + 30
    while children(app.proc.pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    left = children(app.proc.pid)
    return samples, counts, left


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    bench.ensure_tools()
    import subprocess
    bench.build()
    subprocess.run([str(ROOT / "scripts" / "setup")], check=True)
    work = Path(tempfile.mkdtemp(prefix="reelay-soak-"))
    work.chmod(0o755)
    www = work / "www"
    www.mkdir()
    bench.make_media(www)
    nginx = bench.Nginx(work)
    cut = bench.CutOrigin(www)
    app = bench.Reelay(work, f"http://127.0.0.1:{nginx.port}", cut_origin=cut.base,
                       extra_env={"STREAM_CACHE_MEMORY": "64MiB", "EXTRACTOR": "process",
                                  # Cached info lives 5 min, so the cache is at its steady size
                                  # by the end of warm-up and growth after it is a leak.
                                  "VIDEO_INFO_TTL": "300"})
    try:
        app.first_200_ms()
        idle = bench.rss_mb(app.proc.pid)
        samples, counts, left = asyncio.run(soak(app, args.minutes))
    finally:
        app.stop()
        nginx.stop()
        cut.stop()
    warm = [s for s in samples if s["t"] >= args.minutes * 60 / 5]
    report = {k: slope_per_hour([(s["t"], s[k]) for s in warm]) for k in ("rss", "fds", "children", "tasks")}
    rows = [
        ("RSS", f"{idle:.1f} MB idle; {min(s['rss'] for s in warm):.1f}–{max(s['rss'] for s in warm):.1f} MB after warm-up (64 MiB store)", f"{report['rss']:+.2f} MB/h"),
        ("open file descriptors", f"{min(s['fds'] for s in warm)}–{max(s['fds'] for s in warm)}", f"{report['fds']:+.2f} /h"),
        ("child processes (yt-dlp, ffmpeg)", f"{min(s['children'] for s in warm)}–{max(s['children'] for s in warm)}; {len(left)} left after the traffic stopped", f"{report['children']:+.2f} /h"),
        ("runtime tasks", f"{min(s['tasks'] for s in warm):.0f}–{max(s['tasks'] for s in warm):.0f}", f"{report['tasks']:+.2f} /h"),
    ]
    now = datetime.datetime.now(datetime.timezone.utc)
    table = "\n".join(
        [f"Soak {now:%Y-%m-%d %H:%M} UTC: {args.minutes:g} min of mixed traffic, {CLIENTS} clients, {counts['ok']:,} requests "
         f"({counts['errors']} client errors), a sample every 10 s, slopes fitted after the first fifth (`bench/soak.py`).",
         "", "| reading | range | slope |", "|---|---|---|"]
        + [f"| {a} | {b} | {c} |" for a, b, c in rows])
    print(table)
    if left:
        print(f"left behind: {left}")
    if args.no_write:
        return
    out = ROOT / "bench" / "results" / f"soak-{now:%Y-%m-%d}.md"
    out.write_text(table + "\n\n```\n" + "\n".join(
        f"{s['t']:.0f} s rss {s['rss']:.1f} fds {s['fds']} children {s['children']} tasks {s['tasks']:.0f} store {s['store']:.1f} requests {s['requests']}"
        for s in samples) + "\n```\n")
    md = ROOT / "BENCHMARKS.md"
    text = md.read_text()
    start, end = "<!-- soak:start -->", "<!-- soak:end -->"
    if start in text:
        text = text[:text.index(start) + len(start)] + "\n" + table + f"\n\nFrom `bench/results/{out.name}`.\n" + text[text.index(end):]
        md.write_text(text)
    bench.log(f"soak: wrote {out.relative_to(ROOT)} and BENCHMARKS.md")


if __name__ == "__main__":
    main()
