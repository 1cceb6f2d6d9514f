#!/usr/bin/env python3
"""SABR against plain URLs, side by side in one run (issue 32's figures).

One origin serves a two-hour film (5 s video fragments, 10 s audio ones, as
YouTube's) both through SABR and by plain URL: the tests' stand-in SABR
server run on its own (`bench/sabr_origin.rs`, checked by googlevideo's
client in the tests). The stand-in yt-dlp lists it as `sabrfilm…` (SABR
formats only) and as `film…` (plain URLs), so each figure is reelay through
SABR against reelay relaying the same bytes by plain URL, in the same run:

- a cold seek into the last minute: `ffmpeg -ss 7140 -i <proxy link>` to
  its first frames, and a player's seek by byte range after the file's head
  (time to the seek's first byte);
- reelay's CPU (its threads' run time, from /proc) per MB of the film's composed
  file (video and audio joined in process), read whole on a cold store;
  the film is small (180p at 2 frames/s: 50 KB segments, so the figure is
  mostly the cost of a SABR request), so the same is measured on a
  10-minute film at a real bitrate (360p of noise at ~2.5 Mbit/s in 5 s
  segments, AAC at 128 kbit/s), from a second stand-in;
- 20 viewers of the composed file at once: segments the SABR server sent,
  against the different segments among them (1.00 = each sent once).

    bench/sabr.py [--no-write]

Writes bench/results/sabr-<date>.md and the table between the sabr markers
in BENCHMARKS.md.
"""
import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: reelay, the stand-in yt-dlp)

ROOT = run.ROOT
VIEWERS = 20
SEEK_S = 7140
HD_S = 600


def cpu_s(pid):
    """Seconds `pid`'s threads have run (schedstat: nanoseconds, where
    /proc's user and system times count 10 ms ticks, too coarse for a read
    that costs tens of milliseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total / 1e9


def make_hd_film(media: Path):
    """10 minutes at a real bitrate: noise keeps x264 from shrinking it."""
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    dash = ["-movflags", "+dash+global_sidx", "-f", "mp4"]
    subprocess.run(lavfi + ["-i", "testsrc2=size=640x360:rate=25", "-t", str(HD_S), "-vf", "noise=alls=40:allf=t",
                            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2500k", "-maxrate", "2500k",
                            "-bufsize", "5000k", "-g", "125", "-keyint_min", "125", "-sc_threshold", "0",
                            "-pix_fmt", "yuv420p", "-an"] + dash + [str(media / "film-v.mp4")], check=True)
    subprocess.run(lavfi + ["-i", "sine=frequency=440:sample_rate=44100", "-t", str(HD_S), "-c:a", "aac", "-b:a", "128k",
                            "-frag_duration", "10000000"] + dash + [str(media / "film-a.m4a")], check=True)


def make_film(media: Path):
    """The tests' film (tests/api/compose.rs): the same ffmpeg settings."""
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    dash = ["-movflags", "+dash+global_sidx", "-f", "mp4"]
    subprocess.run(lavfi + ["-i", "testsrc2=size=320x180:rate=2", "-t", "7200", "-c:v", "libx264", "-preset", "ultrafast",
                            "-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-an"] + dash
                   + [str(media / "film-v.mp4")], check=True)
    subprocess.run(lavfi + ["-i", "sine=frequency=440:sample_rate=8000", "-t", "7200", "-c:a", "aac", "-b:a", "16k",
                            "-ac", "1", "-frag_duration", "10000000"] + dash + [str(media / "film-a.m4a")], check=True)


class SabrOrigin:
    def __init__(self, media: Path):
        binary = ROOT / "target" / "release" / "examples" / "sabr_origin"
        self.proc = subprocess.Popen([str(binary), str(media)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.base = f"http://127.0.0.1:{int(line.split()[-1])}"

    def stats(self, vid):
        return json.loads(run.get(f"{self.base}/stats/{vid}")[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def vid(prefix):
    return (prefix + uuid.uuid4().hex)[:11]


def link(app, v):
    return f"{app.base}/api/v2/stream/proxy/youtube/{v}?quality=720p"


def ffmpeg_seek_s(url):
    start = time.perf_counter()
    out = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(SEEK_S), "-i", url, "-t", "2", "-c", "copy", "-f", "null", "-"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-500:]
    return time.perf_counter() - start


def byte_seek_ms(url):
    """A player's seek: the head (its first MiB), then the range from where
    the last minute's bytes lie (the film's rate is constant); the time to
    the seek's first byte."""
    status, _ = run.get(url, {"Range": "bytes=0-1048575"})
    assert status == 206, status
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as r:
        length = int(r.headers["Content-Length"])
    at = length * SEEK_S // 7200
    req = urllib.request.Request(url, headers={"Range": f"bytes={at}-"})
    start = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        assert r.status == 206, r.status
        r.read(1)
        first = time.perf_counter() - start
    return first * 1000


def read_whole(url):
    with urllib.request.urlopen(url) as r:
        n = 0
        while chunk := r.read(1 << 20):
            n += len(chunk)
    return n


def cpu_per_mb(app):
    """reelay's CPU per MB (ms) of a cold composed file through SABR and by
    plain URL (its info looked up first, so the extraction is not counted):
    the two taken in turn, after one of each that warms the process (its
    first reads grow the allocator's arenas), median of 7 each."""
    cpu = {"sabrfilm": [], "film": []}
    for n in range(8):
        for prefix in cpu:
            v = vid(prefix)
            assert run.get(f"{app.base}/api/v2/videos/youtube/{v}")[0] == 200
            before = cpu_s(app.proc.pid)
            size = read_whole(link(app, v))
            if n:
                cpu[prefix].append((cpu_s(app.proc.pid) - before) / (size / 1e6) * 1000)
    return statistics.median(cpu["sabrfilm"]), statistics.median(cpu["film"]), size / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "reelay", "--example", "sabr_origin"],
                   cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="reelay-bench-sabr-"))
    media = work / "media"
    media.mkdir()
    make_film(media)
    origin = SabrOrigin(media)
    r = {}
    try:
        app = run.Reelay(work, origin.base)
        app.first_200_ms()
        # Cold each time (a fresh id is a fresh object of the store), the
        # two kinds in turn so neither pays alone for a process warming up.
        seeks = {"sabr": ([], []), "plain": ([], [])}
        for _ in range(3):
            for kind, prefix in (("sabr", "sabrfilm"), ("plain", "film")):
                seeks[kind][0].append(ffmpeg_seek_s(link(app, vid(prefix))))
                seeks[kind][1].append(byte_seek_ms(link(app, vid(prefix))))
        for kind, (ffmpeg, first_byte) in seeks.items():
            r[f"{kind}_ffmpeg_s"], r[f"{kind}_seek_ms"] = min(ffmpeg), statistics.median(first_byte)
        r["sabr_cpu_ms_per_mb"], r["plain_cpu_ms_per_mb"], r["size_mb"] = cpu_per_mb(app)
        crowd = vid("sabrfilm")
        with ThreadPoolExecutor(VIEWERS) as pool:
            sizes = list(pool.map(lambda _: read_whole(link(app, crowd)), range(VIEWERS)))
        assert len(set(sizes)) == 1, sizes
        s = origin.stats(crowd)
        r["crowd_sent"], r["crowd_distinct"], r["crowd_requests"] = s["sent"], s["distinct"], s["requests"]
        app.stop()
        hd = work / "media-hd"
        hd.mkdir()
        make_hd_film(hd)
        hd_origin = SabrOrigin(hd)
        try:
            app = run.Reelay(work, hd_origin.base, extra_env={"REELAY_BENCH_FILM_S": str(HD_S)}, name="reelay-hd")
            app.first_200_ms()
            r["hd_sabr_cpu_ms_per_mb"], r["hd_plain_cpu_ms_per_mb"], r["hd_size_mb"] = cpu_per_mb(app)
            app.stop()
        finally:
            hd_origin.stop()
    finally:
        origin.stop()

    now = datetime.datetime.now(datetime.timezone.utc)
    cpu_name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "")
    rows = [
        ("cold seek into the last minute of a 2-hour film, `ffmpeg -ss 7140 -i <proxy link>` to its first 2 s (best of 3)",
         f"SABR {r['sabr_ffmpeg_s']:.2f} s; plain URLs {r['plain_ffmpeg_s']:.2f} s = {r['sabr_ffmpeg_s'] / r['plain_ffmpeg_s']:.2f}×"),
        ("a player's seek by byte range after the head, cold: time to its first byte (median of 3)",
         f"SABR {r['sabr_seek_ms']:.0f} ms; plain URLs {r['plain_seek_ms']:.0f} ms"),
        (f"reelay's CPU per MB of the composed file, read whole, cold ({r['size_mb']:.1f} MB; the two in turn, median of 7 each)",
         f"SABR {r['sabr_cpu_ms_per_mb']:.2f} ms/MB; plain URLs {r['plain_cpu_ms_per_mb']:.2f} ms/MB = "
         f"{r['sabr_cpu_ms_per_mb'] / r['plain_cpu_ms_per_mb']:.2f}×"),
        (f"the same on a {HD_S // 60}-minute film at a real bitrate ({r['hd_size_mb']:.0f} MB: 5 s segments of ~1.6 MB)",
         f"SABR {r['hd_sabr_cpu_ms_per_mb']:.2f} ms/MB; plain URLs {r['hd_plain_cpu_ms_per_mb']:.2f} ms/MB = "
         f"{r['hd_sabr_cpu_ms_per_mb'] / r['hd_plain_cpu_ms_per_mb']:.2f}×"),
        (f"{VIEWERS} viewers of the SABR film's composed file at once",
         f"{r['crowd_sent']} segments sent for {r['crowd_distinct']} different ({r['crowd_sent'] / r['crowd_distinct']:.2f}×), "
         f"{r['crowd_requests']} SABR requests"),
    ]
    report = (f"SABR run {now:%Y-%m-%d %H:%M} UTC (`bench/sabr.py`{', ' + cpu_name if cpu_name else ''}; "
              f"the stand-in SABR server and the plain URLs from one origin, `bench/sabr_origin.rs`).\n\n"
              f"{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("sabr", report, "SABR against plain URLs")


if __name__ == "__main__":
    main()
