#!/usr/bin/env python3
"""reelay's benchmark harness: one command, every figure of BENCHMARKS.md.

Builds the release binary, starts nginx (the origin, with a throttled
location, and the proxy_pass yardstick), an origin that cuts long responses,
and reelay with the memory backend and the stand-in extractor on 127.0.0.1,
measures with wrk, curl and asyncio clients, writes bench/results/<date>.md
and rewrites the table in BENCHMARKS.md.

  bench/run                 # the full run (about 8 minutes)
  bench/run --duration 2    # shorter wrk runs
  bench/run --smoke         # tiny durations and counts, to check the harness

Absolute numbers drift on shared machines; the ratios to nginx measured in the
same run are the figures to compare from run to run.
"""
import argparse
import asyncio
import http.server
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fixtures" / "fake_ytdlp.py"
BIN = ROOT / "target" / "release" / "reelay"
BIG_MB = 200
R64 = 64 * 1024 * 1024
# A viewer of the crowd: 2.5 Mbit/s.
CROWD_RATE = 2_500_000 // 8

# The Go reference service, measured on this kind of 2-core machine.
REFERENCE = {
    "health_c50": 11198, "health_c400": 10056, "metrics_c50": 65038,
    "video_c50": 6758, "video_c400": 7629, "proxy_vs_nginx": 1.28,
    "idle_rss": 10, "after_rss": 33, "peak_rss_c400": 42, "startup_ms": 500, "extractor_runs": 80,
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tools():
    missing = [pkg for tool, pkg in [("wrk", "wrk"), ("nginx", "nginx-light"), ("curl", "curl")] if not shutil.which(tool)]
    if missing:
        log(f"bench: installing {' '.join(missing)} from Debian's packages")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def build(*examples):
    """The release binary as it ships (`scripts/build`, alone: built beside
    an example it takes the dev-dependencies' features, which changes its
    code and the function names link/text.order lays out), then the
    examples the bench needs."""
    subprocess.run(["scripts/build", "--quiet"], cwd=ROOT, check=True)
    for example in examples:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--example", example], cwd=ROOT, check=True)


def cpu_model():
    """The CPU's name: ratios measured on one kind of machine may not hold on another."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def cpu_s(pid):
    """User + system seconds of `pid` and of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


class Nginx:
    """nginx serving the work folder on one port and proxy_pass to it on another."""

    def __init__(self, root: Path):
        self.port, self.proxy_port = free_port(), free_port()
        conf = root / "nginx.conf"
        # One worker per core, as nginx is deployed: with one, its small
        # answers ran 15-20% slower (a 200 MB proxy_pass is the same either way).
        conf.write_text(f"""
worker_processes auto;
worker_rlimit_nofile 16384;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on;
  # Open files kept open, as nginx is tuned to serve small files.
  open_file_cache max=1000 inactive=60s;
  client_body_temp_path {root}/tmp-body; proxy_temp_path {root}/tmp-proxy;
  fastcgi_temp_path {root}/tmp-fcgi; uwsgi_temp_path {root}/tmp-uwsgi; scgi_temp_path {root}/tmp-scgi;
  types {{ text/html html; video/mp4 mp4; audio/mp4 m4a; application/octet-stream bin; }}
  log_format sent '$uri $body_bytes_sent';
  server {{
    listen 127.0.0.1:{self.port}; root {root}/www; access_log {root}/origin.log sent;
    # YouTube's throttling of long responses: 10 MiB at full speed, then 2 MiB/s.
    location /throttled/ {{ alias {root}/www/; limit_rate_after 10m; limit_rate 2m; }}
    # The same files without a log line: the yardstick for reelay's routes
    # that log none (health, metrics).
    location /quiet/ {{ alias {root}/www/; access_log off; }}
  }}
  server {{ listen 127.0.0.1:{self.proxy_port}; location / {{ proxy_pass http://127.0.0.1:{self.port}; }} }}
}}
""")
        self.log = root / "origin.log"
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/page.html")
        except SystemExit:
            self.stop()
            raise

    def sent(self, uri):
        """Body bytes the origin has sent for `uri` so far."""
        time.sleep(0.2)  # nginx logs when a response ends
        total = 0
        for line in self.log.read_text().splitlines():
            path, _, n = line.rpartition(" ")
            if path == uri:
                total += int(n)
        return total

    def cpu_s(self):
        """User + system seconds of nginx's workers so far."""
        tasks = Path(f"/proc/{self.proc.pid}/task").iterdir()
        return sum(cpu_s(pid) for task in tasks for pid in (task / "children").read_text().split())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class CutOrigin:
    """An origin that honours Range and drops every response after 5 MB,
    as googlevideo and CDNs do to long transfers."""

    def __init__(self, www: Path):
        www_dir = www

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = www_dir / self.path.split("?")[0].lstrip("/")
                size = path.stat().st_size
                first, last = 0, size - 1
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes="):
                    a, _, b = rng[6:].partition("-")
                    first, last = int(a), min(int(b) if b else size - 1, size - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(last - first + 1))
                self.send_header("Content-Type", "video/mp4")
                self.end_headers()
                with open(path, "rb") as f:
                    f.seek(first)
                    self.wfile.write(f.read(min(last - first + 1, 5_000_000)))
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        import threading
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def big_origin(prefix):
    """A work folder (readable by nginx's workers) whose nginx serves
    200 MB of noise as /big.bin: the relay benchmarks' origin."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    www = work / "www"
    www.mkdir()
    with open(www / "big.bin", "wb") as f:
        chunk = os.urandom(1024 * 1024)
        for _ in range(BIG_MB):
            f.write(chunk)
    (www / "page.html").write_text("<html></html>")
    return work, Nginx(work)


def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(url)[0] == 200:
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise SystemExit(f"bench: {url} never answered")


class Reelay:
    def __init__(self, work: Path, origin: str, extra_env=None, delay_ms=0, name="reelay", cut_origin="", binary=BIN):
        self.port = free_port()
        self.fake_log = work / f"{name}-runs.log"
        self.fake_log.write_text("")
        self.fake = work / f"{name}-yt-dlp"
        self.fake.write_text(f"#!/bin/sh\nREELAY_BENCH_CUT_ORIGIN={cut_origin} exec python3 {FAKE} --origin {origin} --log {self.fake_log} --delay-ms {delay_ms} \"$@\"\n")
        self.fake.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_HOST", "REDIS_URL")}
        env.update(HOST="127.0.0.1", PORT=str(self.port), ALLOW_PRIVATE_NETWORKS="true", YTDLP_PATH=str(self.fake),
                   ENVIRONMENT="production", LOG_LEVEL="info", RATE_LIMIT_ENABLED="false", CACHE_BACKEND="memory")
        env.update(extra_env or {})
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"

    def first_200_ms(self):
        """Time from spawn to the first 200 on /health, polling as fast as it can."""
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(12)[9:12] == b"200":
                        return (time.perf_counter() - self.started) * 1000
            except OSError:
                pass
            if time.perf_counter() - self.started > 10:
                raise SystemExit("bench: reelay did not start")

    def runs(self):
        return len(self.fake_log.read_text().splitlines())

    def prom(self, series):
        """One sample of /metrics."""
        text = get(f"{self.base}/metrics")[1].decode()
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(url, conns, seconds):
    """wrk's figures, and its own CPU per request (`wrk_us`): the load's
    share of the two cores, which bounds the rate any server reaches here."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    wrk_us = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / max(requests, 1) * 1e6

    def ms(text):
        v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    avg = ms(re.search(r"Latency\s+(\S+)", out).group(1))
    # At a line's start: the Latency line's spread (`73.99%`) ends in "99%" too.
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?):\s*(\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    return {"rps": rps, "avg_ms": avg, "p99_ms": p99, "errors": errors, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "requests": requests, "wrk_us": wrk_us}


def download_mb_s(url, times):
    speeds = []
    for _ in range(times):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                             capture_output=True, text=True, check=True).stdout.split()
        size, secs = int(out[0]), float(out[1])
        assert size == BIG_MB * 1024 * 1024, f"short download from {url}: {size}"
        speeds.append(size / secs / 1e6)
    return statistics.median(speeds)


def download_s(url):
    """Seconds to download `url` (checked whole against its length)."""
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "200", f"{url}: {out}"
    return float(out[2]), int(out[1])


def concurrent_downloads(url, n):
    """`n` clients downloading `url` at once; returns their byte counts."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: download_s(url)[1], range(n)))


async def open_stream(host, port, path):
    """Sends a GET and reads the head: (reader, writer, whether it is a 200)."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, b" 200 " in head.split(b"\r\n")[0]


CROWD = ROOT / "target" / "release" / "examples" / "crowd"


def crowd(port, path, viewers, seconds, pid, arrival, buffer_s=5):
    """`viewers` players at CROWD_RATE arriving over `arrival` seconds
    (bench/crowd.rs); returns ([(first byte ms or None, bytes, stalled, ms late)],
    peak RSS MB)."""
    # A player's socket gets a 256 KiB receive buffer, as its kernel would give
    # it on a real network at 2.5 Mbit/s; left alone on loopback it grows to
    # megabytes and the server spends the cores pushing each one far ahead.
    proc = subprocess.Popen([str(CROWD), f"127.0.0.1:{port}", path, str(viewers), str(CROWD_RATE), str(seconds),
                             str(arrival), str(buffer_s)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, RCVBUF=str(256 * 1024)))
    peak = rss_mb(pid)
    while proc.poll() is None:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.2)
    return [tuple(r) for r in json.loads(proc.stdout.read())], peak


async def slow_streams(host, port, path, count, seconds, pid):
    """`count` clients each reading a stream slowly (16 KiB every 100 ms); returns (errors, peak RSS MB)."""
    errors = 0
    peak = rss_mb(pid)
    stop_at = time.time() + seconds

    async def client():
        nonlocal errors
        try:
            reader, writer, ok = await open_stream(host, port, path)
            if not ok:
                errors += 1
            while time.time() < stop_at:
                if not await reader.read(16384):
                    errors += 1
                    break
                await asyncio.sleep(0.1)
            writer.close()
        except Exception:
            errors += 1

    tasks = [asyncio.create_task(client()) for _ in range(count)]
    while any(not t.done() for t in tasks):
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.2)
    return errors, peak


def timed_get_ms(url):
    t = time.perf_counter()
    status, _ = get(url)
    assert status == 200, url
    return (time.perf_counter() - t) * 1000


def fake_alone_ms(reelay, origin, n):
    """The stand-in's own run time, as reelay runs it."""
    times = []
    for i in range(n):
        t = time.perf_counter()
        subprocess.run([str(reelay.fake), "-J", "--no-playlist", "--no-warnings", "--ignore-config", "--",
                        f"https://www.youtube.com/watch?v=alonealon{i:02d}"], capture_output=True, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def make_media(www: Path):
    """The origin's files: 200 MB and 64 MiB of noise, a page with a video,
    and a 60 s 720p video-only MP4 with its audio (made by ffmpeg)."""
    for name, mb in [("big.bin", BIG_MB), ("r64.bin", 64)]:
        with open(www / name, "wb") as f:
            chunk = os.urandom(1024 * 1024)
            for _ in range(mb):
                f.write(chunk)
    (www / "page.html").write_text('<html><head><title>Bench page</title></head><body><video src="/big.bin"></video></body></html>')
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    subprocess.run(lavfi + ["-i", "testsrc2=size=1280x720:rate=30", "-t", "60", "-c:v", "libx264", "-preset", "ultrafast",
                            "-g", "60", "-movflags", "+faststart", str(www / "v720.mp4")], check=True)
    subprocess.run(lavfi + ["-i", "sine=frequency=440:sample_rate=44100", "-t", "60", "-c:a", "aac",
                            "-movflags", "+faststart", str(www / "a.m4a")], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--smoke", action="store_true", help="tiny durations and counts: checks the harness, not the figures")
    ap.add_argument("--no-write", action="store_true", help="print the results only")
    args = ap.parse_args()
    dur = 1 if args.smoke else args.duration
    streams = 50 if args.smoke else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    ensure_tools()
    build("crowd")
    subprocess.run([str(ROOT / "scripts" / "setup")], check=True)
    work = Path(tempfile.mkdtemp(prefix="reelay-bench-"))
    work.chmod(0o755)  # nginx's workers run as nobody
    www = work / "www"
    www.mkdir()
    make_media(www)
    nginx = Nginx(work)
    cut = CutOrigin(www)
    origin = f"http://127.0.0.1:{nginx.port}"
    r = {}
    try:
        # Start-up: median of 5 fresh processes.
        starts = []
        for i in range(5):
            p = Reelay(work, origin, name=f"start{i}")
            starts.append(p.first_200_ms())
            p.stop()
        r["startup_ms"] = statistics.median(starts)

        app = Reelay(work, origin, cut_origin=cut.base)
        app.first_200_ms()
        time.sleep(1.5)  # let the health refresh settle
        r["idle_rss"] = rss_mb(app.proc.pid)
        vid = "benchbenchb"
        info_url = f"{app.base}/api/v2/videos/youtube/{vid}"
        status, body = get(info_url)
        assert status == 200 and len(json.loads(body)["data"]["formats"]) == 20, body[:200]
        r["video_json_kb"] = len(body) / 1024
        for name, url in [("health", f"{app.base}/health"), ("metrics", f"{app.base}/api/v2/stream/metrics"), ("video", info_url)]:
            for c in (50, 400):
                w = wrk(url, c, dur)
                r[f"{name}_c{c}"] = w["rps"]
                r[f"{name}_c{c}_lat"] = w
                if c == 400:
                    r[f"peak_rss_after_{name}"] = rss_mb(app.proc.pid, "VmHWM")
        r["peak_rss_c400"] = rss_mb(app.proc.pid, "VmHWM")
        proxy = lambda v, q="360p": f"{app.base}/api/v2/stream/proxy/youtube/{v}?quality={q}"  # noqa: E731
        warm = lambda v: get(f"{app.base}/api/v2/videos/youtube/{v}")  # noqa: E731

        # Throughput against nginx in the same run: bytes not yet stored (a new
        # video each time, its info already cached), then bytes in the store.
        n = 2 if args.smoke else 5
        r["nginx_direct"] = download_mb_s(f"{origin}/big.bin", n)
        r["nginx_proxy_pass"] = download_mb_s(f"http://127.0.0.1:{nginx.proxy_port}/big.bin", n)
        cold = []
        for i in range(n):
            warm(f"benchcold{i:02d}")
            cold.append(download_mb_s(proxy(f"benchcold{i:02d}"), 1))
        r["reelay_proxy"] = statistics.median(cold)
        r["proxy_vs_nginx"] = r["reelay_proxy"] / r["nginx_proxy_pass"]
        r["reelay_hot"] = download_mb_s(proxy(f"benchcold{n - 1:02d}"), n)
        r["hot_vs_nginx"] = r["reelay_hot"] / r["nginx_direct"]

        # 20 viewers of one 64 MiB file at once: what the origin sends.
        warm("bench64shar")
        before = nginx.sent("/r64.bin")
        got = concurrent_downloads(proxy("bench64shar"), 20)
        assert all(g == R64 for g in got), got
        r["shared_copies"] = (nginx.sent("/r64.bin") - before) / R64

        # An origin that throttles past 10 MiB: nginx alone, and reelay asking 10 MiB ranges.
        warm("benchthrot1")
        r["throttled_reelay_s"] = download_s(proxy("benchthrot1"))[0]
        r["throttled_direct_s"] = download_s(f"{origin}/throttled/r64.bin")[0] if not args.smoke else 0

        # An origin that cuts every response after 5 MB: resumed, intact.
        warm("benchcut001")
        got = subprocess.run(f"curl -s '{proxy('benchcut001')}' | sha256sum", shell=True, capture_output=True, text=True, check=True)
        r["cut_intact"] = got.stdout.split()[0] == sha256(www / "r64.bin")
        r["cut_direct_mb"] = int(subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", f"{cut.base}/r64.bin"],
                                                capture_output=True, text=True).stdout) / 1e6
        r["cut_resumes"] = app.prom('reelay_relay_resumes_total{reason="dropped"}')

        # A crowd: 1,000 players of one video at 2.5 Mbit/s each, joining within a
        # second; then another opening a video all at the same instant. Three
        # runs of each, a new video each time; the run with the median p99 is
        # reported, with the range of the three p99s (the players share the
        # cores with the server, so one run alone swings by a second).
        viewers = 100 if args.smoke else 1000
        # A first crowd on a freshly made origin is slow whichever binary
        # serves it (first byte ~1.5 s; the previous and the current binary
        # alike, 2026-12-01): one unrecorded crowd first.
        warm("benchcrowdw")
        crowd(app.port, "/api/v2/stream/proxy/youtube/benchcrowdw?quality=360p", viewers, 5, app.proc.pid, arrival=1.0)
        for name, prefix, seconds, arrival in [("crowd", "benchcrowd", 30, 1.0), ("burst", "benchburst", 10, 0.0)]:
            seconds = 5 if args.smoke else seconds
            runs = []
            for i in range(1 if args.smoke else 3):
                vid_c = f"{prefix}{i}"
                warm(vid_c)
                time.sleep(3)  # the earlier runs' sockets and writes settle
                before, relay_before = nginx.sent("/big.bin"), app.prom("reelay_relay_origin_bytes_total")
                results, peak = crowd(app.port, f"/api/v2/stream/proxy/youtube/{vid_c}?quality=360p", viewers, seconds,
                                      app.proc.pid, arrival=arrival)
                firsts = sorted(f for f, _, _, _ in results if f is not None)
                late = sorted(l for _, _, _, l in results)
                furthest = max(g for _, g, _, _ in results)
                run = {
                    "realtime": 100 * sum(1 for f, _, s, _ in results if f is not None and not s) / viewers,
                    "copies": (nginx.sent("/big.bin") - before) / furthest,
                    "relay_copies": (app.prom("reelay_relay_origin_bytes_total") - relay_before) / furthest,
                    "fb_p50": firsts[len(firsts) // 2] if firsts else 0,
                    "fb_p99": firsts[int(len(firsts) * 0.99) - 1] if firsts else 0,
                    "peak_rss": peak,
                }
                runs.append(run)
                log(f"bench: {name} {i}: p50/p99 {run['fb_p50']:.0f}/{run['fb_p99']:.0f} ms, players late p99 "
                    f"{late[int(len(late) * 0.99) - 1]:.0f} ms, origin log {run['copies']:.2f} copies, "
                    f"relay counter {run['relay_copies']:.2f}")
            p99s = sorted(run["fb_p99"] for run in runs)
            median = sorted(runs, key=lambda run: run["fb_p99"])[len(runs) // 2]
            r[name], r[f"{name}_seconds"] = viewers, seconds
            r.update({f"{name}_{k}": v for k, v in median.items()})
            r[f"{name}_realtime"] = min(run["realtime"] for run in runs)
            r[f"{name}_copies"] = max(run["copies"] for run in runs)
            r[f"{name}_peak_rss"] = max(run["peak_rss"] for run in runs)
            r[f"{name}_p99_range"] = f"{p99s[0]:.0f}–{p99s[-1]:.0f}"

        # Many slow streams at once.
        errors, peak = asyncio.run(slow_streams("127.0.0.1", app.port, f"/api/v2/stream/proxy/youtube/{vid}?quality=360p",
                                                streams, 3 if args.smoke else 10, app.proc.pid))
        r["slow_streams"], r["slow_errors"], r["slow_peak_rss"] = streams, errors, peak
        time.sleep(1)
        r["after_rss"] = rss_mb(app.proc.pid)
        time.sleep(5 if args.smoke else 60)
        r["after_60s_rss"] = rss_mb(app.proc.pid)
        r["after_60s_store"] = app.prom("reelay_relay_store_bytes") / 1e6

        # 10 viewers of one merged 720p stream: ffmpeg runs, origin bytes per input.
        merges = app.prom("reelay_relay_merges_total")
        sent_v, sent_a = nginx.sent("/v720.mp4"), nginx.sent("/a.m4a")
        t = time.perf_counter()
        got = concurrent_downloads(proxy("benchmrg001", "720p"), 10)
        r["merge_s"] = time.perf_counter() - t
        assert len(set(got)) == 1, got
        r["merge_ffmpegs"] = app.prom("reelay_relay_merges_total") - merges
        r["merge_input_copies"] = max((nginx.sent("/v720.mp4") - sent_v) / (www / "v720.mp4").stat().st_size,
                                      (nginx.sent("/a.m4a") - sent_a) / (www / "a.m4a").stat().st_size)

        # Cold misses with the stand-in: end to end minus the stand-in's own time.
        n = 3 if args.smoke else 10
        e2e = statistics.median(timed_get_ms(f"{app.base}/api/v2/videos/youtube/coldcold{i:03d}") for i in range(n))
        alone = fake_alone_ms(app, origin, n)
        r["cold_e2e_ms"], r["cold_fake_ms"], r["cold_overhead_ms"] = e2e, alone, e2e - alone
        app.stop()

        # 1 video x 3 qualities x 20 clients, all at once: extractor runs.
        app = Reelay(work, origin, delay_ms=300, name="flight")
        app.first_200_ms()

        urls = [f"{app.base}/api/v2/stream/direct/youtube/flightfligh?quality={q}" for q in ("best", "720p", "360p") for _ in range(20)]
        curl = lambda u: subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", u],  # noqa: E731
                                        capture_output=True, text=True).stdout
        with ThreadPoolExecutor(len(urls)) as pool:
            codes = list(pool.map(curl, urls))
        r["extractor_runs"] = app.runs()
        r["burst_codes"] = sorted(set(codes))
        app.stop()

        # The real yt-dlp on a local page: a process per miss, and warm workers.
        venv = ROOT / ".venv" / "bin"
        n = 3 if args.smoke else 8
        for mode, env in [("process", {"YTDLP_PATH": str(venv / "yt-dlp")}),
                          ("worker", {"EXTRACTOR": "worker", "YTDLP_PYTHON": str(venv / "python")})]:
            app = Reelay(work, origin, extra_env=env, name=mode)
            app.first_200_ms()
            deadline = time.time() + 20
            while time.time() < deadline and '"yt-dlp":"available"' not in get(f"{app.base}/health")[1].decode():
                time.sleep(0.1)
            time.sleep(0.5)
            times = [timed_get_ms(f"{app.base}/api/v2/videos?url={origin}/page.html%3Fn%3D{mode}{i}") for i in range(n)]
            r[f"real_{mode}_ms"] = statistics.median(times)
            app.stop()
    finally:
        nginx.stop()
        cut.stop()
        shutil.rmtree(work, ignore_errors=True)

    report = render(r, dur, streams)
    print(report)
    if not args.no_write and not args.smoke:
        write(report)


def ratio(value, ref, higher_is_better=True):
    if not ref:
        return "–"
    return f"{value / ref:.1f}×" if higher_is_better else f"{ref / value:.1f}× less" if value else "∞"


def render(r, dur, streams):
    L = lambda name: r[f"{name}_lat"]  # noqa: E731
    rows = [
        ("`/health` RPS, c50", f"{r['health_c50']:,.0f} (avg {L('health_c50')['avg_ms']:.2f} ms, p99 {L('health_c50')['p99_ms']:.2f} ms); "
         f"wrk's own CPU {L('health_c50')['wrk_us']:.1f} µs a request: at most {2e6 / L('health_c50')['wrk_us']:,.0f} req/s on 2 cores "
         f"({2e6 / L('health_c50')['wrk_us'] / REFERENCE['health_c50']:.1f}× the reference) with a server that cost nothing", ratio(r['health_c50'], REFERENCE['health_c50']), "≥ 8×", f"wrk -t2 -c50 -d{dur}s"),
        ("`/health` RPS, c400", f"{r['health_c400']:,.0f} (avg {L('health_c400')['avg_ms']:.2f} ms, p99 {L('health_c400')['p99_ms']:.2f} ms)", ratio(r['health_c400'], REFERENCE['health_c400']), "≥ 8×", f"wrk -t2 -c400 -d{dur}s"),
        ("`/api/v2/stream/metrics` RPS, c50", f"{r['metrics_c50']:,.0f} (p99 {L('metrics_c50')['p99_ms']:.2f} ms)", ratio(r['metrics_c50'], REFERENCE['metrics_c50']), "≥ 1.5×", f"wrk -t2 -c50 -d{dur}s"),
        ("`/api/v2/stream/metrics` RPS, c400", f"{r['metrics_c400']:,.0f} (p99 {L('metrics_c400')['p99_ms']:.2f} ms)", "–", "", f"wrk -t2 -c400 -d{dur}s"),
        (f"hot video info RPS, c50 ({r['video_json_kb']:.0f} KB)", f"{r['video_c50']:,.0f} (avg {L('video_c50')['avg_ms']:.2f} ms, p99 {L('video_c50')['p99_ms']:.2f} ms)", ratio(r['video_c50'], REFERENCE['video_c50']), "≥ 8×", f"wrk -t2 -c50 -d{dur}s"),
        (f"hot video info RPS, c400", f"{r['video_c400']:,.0f} (avg {L('video_c400')['avg_ms']:.2f} ms, p99 {L('video_c400')['p99_ms']:.2f} ms)", ratio(r['video_c400'], REFERENCE['video_c400']), "≥ 8×", f"wrk -t2 -c400 -d{dur}s"),
        (f"cold relay, {BIG_MB} MB (median of 5)", f"{r['reelay_proxy']:,.0f} MB/s = {r['proxy_vs_nginx']:.2f}× nginx proxy_pass ({r['nginx_proxy_pass']:,.0f})", f"{r['proxy_vs_nginx'] / REFERENCE['proxy_vs_nginx']:.2f}× the reference's ratio", "≥ 1.6× proxy_pass", "curl, a new video each time"),
        (f"hot relay, {BIG_MB} MB in the store (median of 5)", f"{r['reelay_hot']:,.0f} MB/s = {r['hot_vs_nginx']:.2f}× nginx sendfile ({r['nginx_direct']:,.0f})", "–", "≥ 0.8× sendfile", "curl, the same video"),
        ("origin bytes, 20 viewers of one 64 MiB file at once", f"{r['shared_copies']:.2f}× the file", "20× → " + f"{r['shared_copies']:.2f}×", "≤ 1.05×", "nginx access log"),
        ("64 MiB from an origin that throttles past 10 MiB to 2 MiB/s", f"{r['throttled_reelay_s']:.2f} s (the origin alone: {r['throttled_direct_s']:.1f} s)", "–", "≤ 3 s", "curl; http_chunk_size 10 MiB"),
        ("64 MiB from an origin that cuts every response after 5 MB", f"{'intact (sha256 equal)' if r['cut_intact'] else 'CORRUPT'}, {r['cut_resumes']:.0f} resumes (the origin alone: {r['cut_direct_mb']:.1f} MB)", "–", "intact", "curl, sha256"),
        (f"a crowd: {r['crowd']:,} players joining one video within 1 s, 2.5 Mbit/s each, {r['crowd_seconds']} s", f"{r['crowd_realtime']:.1f}% keep real time; origin {r['crowd_copies']:.2f} copies; first byte p50/p99 {r['crowd_fb_p50']:.0f}/{r['crowd_fb_p99']:.0f} ms (p99 of 3 runs {r['crowd_p99_range']}); peak RSS {r['crowd_peak_rss']:.1f} MB", "–", "100%; ≤ 3 copies; p99 ≤ 500 ms; ≤ 64 MB + store", "bench/crowd.rs players (5 s buffer); worst of 3 runs, first byte of the median run"),
        (f"the same, {r['burst']:,} players opening it at one instant, {r['burst_seconds']} s", f"{r['burst_realtime']:.1f}% keep real time; first byte p50/p99 {r['burst_fb_p50']:.0f}/{r['burst_fb_p99']:.0f} ms (p99 of 3 runs {r['burst_p99_range']}); peak RSS {r['burst_peak_rss']:.1f} MB", "–", "", "as above"),
        (f"{streams} concurrent slow proxy streams", f"{r['slow_errors']} errors, peak RSS {r['slow_peak_rss']:.1f} MB", "–", "0 errors, ≤ 64 MB + store", "asyncio clients, 16 KiB / 100 ms"),
        ("RSS 60 s after that load", f"{r['after_60s_rss']:.1f} MB ({r['after_60s_store']:.1f} MB of it stream blocks; idle {r['idle_rss']:.1f})", "–", "≤ 16 MB above idle + store", "/proc VmRSS, /metrics"),
        ("10 viewers of one merged 720p stream (60 s)", f"{r['merge_ffmpegs']:.0f} ffmpeg, each input fetched {r['merge_input_copies']:.2f}×, {r['merge_s']:.1f} s", "10 → " + f"{r['merge_ffmpegs']:.0f}", "1 ffmpeg, inputs once", "curl ×10, nginx log"),
        ("idle RSS, fresh", f"{r['idle_rss']:.1f} MB", ratio(r['idle_rss'], REFERENCE['idle_rss'], False), "≤ 6 MB", "/proc VmRSS"),
        ("RSS after the runs", f"{r['after_rss']:.1f} MB", ratio(r['after_rss'], REFERENCE['after_rss'], False), "–", "/proc VmRSS"),
        ("peak RSS, 400 connections", f"{r['peak_rss_c400']:.1f} MB", ratio(r['peak_rss_c400'], REFERENCE['peak_rss_c400'], False), "≤ 16 MB", "/proc VmHWM after the c400 runs"),
        ("start-up to first 200 on `/health` (median of 5)", f"{r['startup_ms']:.1f} ms", ratio(r['startup_ms'], REFERENCE['startup_ms'], False), "≤ 50 ms", "spawn, poll"),
        ("cold miss overhead, stand-in (median of 10)", f"{r['cold_overhead_ms']:.1f} ms ({r['cold_e2e_ms']:.1f} end to end − {r['cold_fake_ms']:.1f} stand-in)", "–", "", "GET new id"),
        ("cold miss, real yt-dlp on a local page, EXTRACTOR=process", f"{r['real_process_ms']:.0f} ms", "–", "", "GET ?url= new page"),
        ("cold miss, real yt-dlp on a local page, EXTRACTOR=worker", f"{r['real_worker_ms']:.0f} ms", "–", "≤ 100 ms", "GET ?url= new page"),
        ("extractor runs, 1 video × 3 qualities × 20 clients", f"{r['extractor_runs']} (statuses {', '.join(r['burst_codes'])})", f"{REFERENCE['extractor_runs']} → {r['extractor_runs']}", "1", "60 concurrent curl"),
    ]
    head = "| figure | value | vs. the Go reference | target | how |\n|---|---|---|---|---|\n"
    table = head + "\n".join(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows)
    return (f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu_model()}); "
            f"wrk, nginx and reelay share the cores; reelay in production mode (JSON logs at info), memory backend, "
            f"rate limit off.\n\n{table}\n")


def figures(rows):
    """A two-column Markdown table of (figure, value) rows."""
    return "\n".join(["| figure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])


def write_section(marker, report, title):
    """Writes bench/results/<marker>-<date>.md and puts `report` between
    BENCHMARKS.md's `<!-- marker:start -->` and `<!-- marker:end -->` (a new
    section titled `title` at the end when there are none yet)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = ROOT / "bench" / "results" / f"{marker}-{now:%Y-%m-%d}.md"
    out.write_text(report)
    bm = ROOT / "BENCHMARKS.md"
    text = bm.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{report}\nFrom `{out.relative_to(ROOT)}`.\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"
    bm.write_text(text)
    log(f"bench: wrote {out.relative_to(ROOT)} and BENCHMARKS.md")


def write(report):
    day = datetime.date.today().isoformat()
    out = ROOT / "bench" / "results" / f"{day}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Benchmark run, {day}\n\n{report}")
    bm = ROOT / "BENCHMARKS.md"
    text = bm.read_text() if bm.exists() else "# Benchmarks\n\n<!-- results:start -->\n<!-- results:end -->\n"
    new = re.sub(r"<!-- results:start -->.*<!-- results:end -->",
                 lambda _: f"<!-- results:start -->\n{report}\nFrom `bench/results/{day}.md`.\n<!-- results:end -->", text, flags=re.S)
    bm.write_text(new)
    log(f"bench: wrote {out.relative_to(ROOT)} and BENCHMARKS.md")


if __name__ == "__main__":
    main()
