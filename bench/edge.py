#!/usr/bin/env python3
"""reelay behind two nginx edges with the shipped deploy/edge-nginx.conf
(issue 31's figures), in one run:

- 100 HLS players of one video (a 60 s 1080p DASH video and its audio, as
  YouTube's) through the two edges, each fetching the master, every media
  playlist and every segment by byte range: requests that reached reelay
  per object, and what reelay sent against what the players read;
- 1,000 players of one proxied 64 MiB file joining within a second through
  the two edges, each reading 1 MiB from its own place (together the whole
  file): reelay's egress against the file, and the first byte's p50/p99 at
  the edges.

    bench/edge.py [--no-write]

Writes bench/results/edge-<date>.md and the table between the edge markers
in BENCHMARKS.md.
"""
import argparse
import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest  # noqa: E402  (its media)
import run  # noqa: E402  (the harness: nginx, reelay)

ROOT = run.ROOT
SLICE = 1 << 20


class Edge:
    """nginx with deploy/edge-nginx.conf in front of `upstream`."""

    def __init__(self, root: Path, upstream: str, name: str):
        self.port = run.free_port()
        d = root / name
        d.mkdir(mode=0o777)
        d.chmod(0o777)  # the workers (nobody) write the cache and temp files here
        conf = (ROOT / "deploy" / "edge-nginx.conf").read_text()
        conf = (conf.replace("server balancer:8080;", f"server {upstream};")
                .replace("listen 8090;", f"listen 127.0.0.1:{self.port};")
                .replace("/var/cache/reelay-edge", f"{d}/cache")
                .replace("worker_processes auto;", f"worker_processes 1;\nworker_rlimit_nofile 16384;\npid {d}/nginx.pid;")
                .replace("http {", f"http {{\n    client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;"
                         f" uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;"))
        (d / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(["nginx", "-c", str(d / "nginx.conf"), "-e", str(d / "error.log"), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        run.wait_http(f"{self.base}/health")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def prom_sum(reelay, prefix):
    text = run.get(f"{reelay.base}/metrics")[1].decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(prefix))


def routes(reelay):
    r = 'reelay_http_requests_total{route="'
    return (prom_sum(reelay, r + "/api/v2/stream/manifest/{platform}/{video_id}/master.m3u8\""),
            prom_sum(reelay, r + "/api/v2/stream/media/{token}/{name}\""),
            prom_sum(reelay, r + "/api/v2/stream/proxy/{platform}/{video_id}\""),
            prom_sum(reelay, "reelay_relay_served_bytes_total"))


def links(text):
    out = []
    for line in text.splitlines():
        if line.startswith("/"):
            out.append(line)
        elif 'URI="' in line:
            out.append(line.split('URI="', 1)[1].split('"', 1)[0])
    return out


def hls_player(base, master_path):
    """One player: the master, every media playlist, every segment. Returns
    (bytes read, {media playlist}, {(file, total length)})."""
    read, lists, files = 0, set(), set()
    _, master = run.get(base + master_path)
    for media in [l for l in links(master.decode()) if ".m3u8" in l]:
        lists.add(media)
        _, text = run.get(base + media)
        rng = None
        for line in text.decode().splitlines():
            if line.startswith("#EXT-X-BYTERANGE:") or line.startswith("#EXT-X-MAP:"):
                m = re.search(r'BYTERANGE[:=]"?(\d+)@(\d+)', line)
                rng = (int(m.group(2)), int(m.group(1)))
                if line.startswith("#EXT-X-MAP:"):
                    uri = line.split('URI="', 1)[1].split('"', 1)[0]
                    read += fetch_range(base + uri, rng, files, uri)
                    rng = None
            elif line.startswith("/") and rng:
                read += fetch_range(base + line, rng, files, line)
                rng = None
    return read, lists, files


def fetch_range(url, rng, files, uri):
    start, length = rng
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-{start + length - 1}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        total, body = int(r.headers["Content-Range"].rsplit("/", 1)[1]), r.read()
    files.add((uri, total))
    assert len(body) == length, (url, len(body), length)
    return len(body)


async def one_reader(port, path, start, arrive_at, out):
    await asyncio.sleep(max(0.0, arrive_at - time.perf_counter()))
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: edge\r\nRange: bytes={start}-{start + SLICE - 1}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    first = (time.perf_counter() - t0) * 1000
    status = int(head.split(b" ", 2)[1])
    body = await reader.read()
    writer.close()
    out.append((status, first, len(body)))


async def crowd(ports, path, total, players):
    out = []
    t = time.perf_counter() + 0.2
    span = total - SLICE
    tasks = [one_reader(ports[i % len(ports)], path, (i * span) // players, t + i / players, out) for i in range(players)]
    await asyncio.gather(*tasks)
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--hls-players", type=int, default=100)
    ap.add_argument("--file-players", type=int, default=1000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    if not run.BIN.exists():
        run.build()
    work = Path(tempfile.mkdtemp(prefix="reelay-edge-"))
    work.chmod(0o755)  # nginx's workers run as nobody
    www = work / "www"
    www.mkdir()
    manifest.make_dash_pair(www)
    (www / "r64.bin").write_bytes(os.urandom(run.R64))
    (www / "big.bin").write_bytes(b"\0" * 1024)
    (www / "page.html").write_text("<html></html>")
    origin = run.Nginx(work)
    reelay = run.Reelay(work, f"http://127.0.0.1:{origin.port}")
    reelay.first_200_ms()
    edges = [Edge(work, f"127.0.0.1:{reelay.port}", n) for n in ("edge1", "edge2")]
    rows = []
    try:
        # 100 HLS players, half on each edge.
        before = routes(reelay)
        master = "/api/v2/stream/manifest/youtube/benchdashE1/master.m3u8"
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(lambda i: hls_player(edges[i % 2].base, master), range(args.hls_players)))
        after = routes(reelay)
        read = sum(r[0] for r in results)
        lists = set().union(*(r[1] for r in results))
        files = set().union(*(r[2] for r in results))
        objects = 1 + len(lists) + sum(-(-t // SLICE) for _, t in files)
        reached = (after[0] - before[0]) + (after[1] - before[1])
        file_bytes = sum(t for _, t in files)
        sent = after[3] - before[3]
        rows.append((f"{args.hls_players} HLS players through 2 edges (master, {len(lists)} media playlists, every segment)",
                     f"{int(reached)} requests reached reelay for {objects} objects ({reached / objects:.2f} per object; "
                     f"masters {int(after[0] - before[0])}); "
                     f"reelay sent {sent / 1e6:.1f} MB for files of {file_bytes / 1e6:.1f} MB ({sent / file_bytes:.2f}×); "
                     f"players read {read / 1e6:.0f} MB",
                     "≤ 2 per object (once per edge)"))
        # 1,000 players of one proxied file within a second: a video nobody
        # watched (cold: extraction, store and edges), one whose info is
        # known (the store and the edges cold), and the same crowd again
        # (every slice at the edges: their own answer, the yardstick).
        ports = [e.port for e in edges]
        for kind, vid in (("cold", "bench64E1xx"), ("known video", "bench64E2xx"), ("again (all at the edges)", "bench64E2xx")):
            path = f"/api/v2/stream/proxy/youtube/{vid}?quality=360p"
            if kind == "known video":
                run.get(f"{reelay.base}/api/v2/videos/youtube/{vid}")
            before = routes(reelay)
            out = asyncio.run(crowd(ports, path, run.R64, args.file_players))
            after = routes(reelay)
            ok = [o for o in out if o[0] == 206 and o[2] == SLICE]
            firsts = [o[1] for o in out]
            sent = after[3] - before[3]
            rows.append((f"{args.file_players} players of one proxied 64 MiB file through 2 edges within 1 s, 1 MiB each: {kind}",
                         f"reelay sent {sent / run.R64:.2f}× the file in {int(after[2] - before[2])} requests; "
                         f"first byte p50 {pct(firsts, 50):.0f} ms, p99 {pct(firsts, 99):.0f} ms; {len(ok)}/{len(out)} whole",
                         "egress ≤ 2.1×, p99 ≤ 300 ms"))
    finally:
        for e in edges:
            e.stop()
        reelay.stop()
        origin.stop()
    cpu = run.cpu_model()
    report = f"Machine: {cpu}, {os.cpu_count()} cores; reelay {run.BIN.relative_to(ROOT)}, nginx edges with deploy/edge-nginx.conf.\n\n"
    report += "| figure | measured | target |\n|---|---|---|\n"
    report += "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(report)
    if not args.no_write:
        run.write_section("edge", report, "Behind edge caches (bench/edge.py)")


if __name__ == "__main__":
    main()
