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
  against the different segments among them (1.00 = each sent once);
- a live stream over SABR (the stand-in's `live` quirk: its head moves on
  the wall clock, 2 s segments) watched by 200 HLS players through
  reelay's master playlist for 30 s: SABR sessions (one per format is the
  target), segments sent against different ones, and the delay reelay
  adds: from the moment a segment is there at the SABR server (the end of
  its time) to its listing in reelay's playlist, read by a probe reloading
  it every 50 ms beside the players (a SABR client at the origin would have
  it then; what a player's own reload interval adds is the same for any
  HLS origin).

    bench/sabr.py [--no-write]

Writes bench/results/sabr-<date>.md and the table between the sabr markers
in BENCHMARKS.md.
"""
import argparse
import asyncio
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
import live  # noqa: E402  (its HLS player's keep-alive requests)

ROOT = run.ROOT
VIEWERS = 20
SEEK_S = 7140
HD_S = 600
LIVE_PLAYERS = 200
LIVE_S = 30
# The live stand-in's segments: 2 s each, segment N there from N * 2 s.
LIVE_SEGMENT_MS = 2000


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


def make_live_files(media: Path):
    """The tests' 8 s DASH pair (tests/api/helpers.rs) that the live
    stand-in plays on a loop: 2 s fragments."""
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    dash = ["-t", "8", "-movflags", "+dash+global_sidx", "-f", "mp4"]
    subprocess.run(lavfi + ["-i", "testsrc2=size=640x360:rate=25", "-c:v", "libx264", "-preset", "ultrafast",
                            "-pix_fmt", "yuv420p", "-g", "50", "-sc_threshold", "0", "-an"] + dash
                   + [str(media / "dash-v360.mp4")], check=True)
    subprocess.run(lavfi + ["-i", "sine=frequency=440:sample_rate=44100", "-c:a", "aac", "-frag_duration", "2000000"]
                   + dash + [str(media / "dash-a.m4a")], check=True)


def listing(text):
    """A media playlist's first media sequence, its segment links, its map."""
    seq = int(next(line.split(":")[1] for line in text.splitlines() if line.startswith("#EXT-X-MEDIA-SEQUENCE:")))
    segs = [line for line in text.splitlines() if line and not line.startswith("#")]
    maps = [line.split('"')[1] for line in text.splitlines() if line.startswith("#EXT-X-MAP:")]
    return seq, segs, maps


async def live_player(port, lists, until, got):
    """An HLS player of the audio and the video playlist: each reloaded a
    target duration after a change, half of it after none; every new
    segment and map fetched."""
    p = live.Player("127.0.0.1", port, "", "")
    p.writer = None
    fetched = set()
    while time.time() < until:
        changed = False
        for path in lists:
            try:
                status, body = await p.request(path)
                if status != 200:
                    got["errors"] += 1
                    continue
                got["playlists"] += 1
                seq, segs, maps = listing(body.decode())
                for link in maps + segs[-3:]:
                    if link not in fetched:
                        fetched.add(link)
                        changed = True
                        status, _ = await p.request(link)
                        got["errors"] += status != 200
            except (OSError, asyncio.IncompleteReadError):
                got["errors"] += 1
                p.writer = None
        await asyncio.sleep(LIVE_SEGMENT_MS / 1000 if changed else LIVE_SEGMENT_MS / 2000)
    if p.writer:
        p.writer.close()


async def live_probe(port, path, until, listed):
    """Reloads the video playlist every 50 ms: when each segment was first
    listed (Unix ms)."""
    p = live.Player("127.0.0.1", port, "", "")
    p.writer = None
    while time.time() < until:
        status, body = await p.request(path)
        if status == 200:
            seq, segs, _ = listing(body.decode())
            now = time.time() * 1000
            for k in range(seq, seq + len(segs)):
                listed.setdefault(k, now)
        await asyncio.sleep(0.05)
    p.writer.close()


def live_crowd(app, origin):
    """200 players of a live SABR stream for LIVE_S seconds, and a probe."""
    v = vid("sabrlive")
    status, _ = run.get(f"{app.base}/api/v2/videos/youtube/{v}")
    assert status == 200, status
    req = urllib.request.Request(f"{app.base}/api/v2/stream/youtube/{v}")
    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(req) as r:
        master = r.headers["Location"]
    text = run.get(app.base + master)[1].decode()
    lists = [line.split('URI="')[1].split('"')[0] for line in text.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    lists += [line for line in text.splitlines() if line and not line.startswith("#")][:1]
    got = {"errors": 0, "playlists": 0}
    listed = {}
    cpu0, t0 = cpu_s(app.proc.pid), time.time()

    async def watch():
        until = time.time() + LIVE_S
        players = [live_player(app.port, lists, until, got) for _ in range(LIVE_PLAYERS)]
        await asyncio.gather(live_probe(app.port, lists[-1], until, listed), *players)

    asyncio.run(watch())
    elapsed = time.time() - t0
    s = origin.stats(v)
    first = min(listed)
    # The segments listed at the start were there before anyone asked.
    delays = sorted(listed[k] - (s["live_zero_unix_ms"] + k * LIVE_SEGMENT_MS) for k in listed if k > first + 3)
    pct = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    return {"live_p50_ms": pct(0.5), "live_p99_ms": pct(0.99), "live_max_ms": delays[-1], "live_segments": len(delays),
            "live_sessions": s["playbacks"], "live_sent": s["sent"], "live_distinct": s["distinct"],
            "live_errors": got["errors"], "live_playlists": got["playlists"],
            "live_cpu": (cpu_s(app.proc.pid) - cpu0) / elapsed * 100}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None

    def http_error_302(self, req, fp, code, msg, headers):
        return fp


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--live-only", action="store_true", help="the live stream alone, printed, not written")
    args = ap.parse_args()
    run.ensure_tools()
    run.build("sabr_origin")
    work = Path(tempfile.mkdtemp(prefix="reelay-bench-sabr-"))
    media = work / "media"
    media.mkdir()
    make_live_files(media)
    if args.live_only:
        origin = SabrOrigin(media)
        try:
            app = run.Reelay(work, origin.base)
            app.first_200_ms()
            print(live_crowd(app, origin))
            app.stop()
        finally:
            origin.stop()
        return
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
        r.update(live_crowd(app, origin))
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
    cpu_name = run.cpu_model()
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
        (f"a live stream over SABR, {LIVE_PLAYERS} HLS players through reelay's master for {LIVE_S} s: SABR sessions",
         f"{r['live_sessions']} (one per format: video, audio); {r['live_sent']} segments sent for "
         f"{r['live_distinct']} different; {r['live_errors']} errors in {r['live_playlists']} playlists; "
         f"reelay {r['live_cpu']:.0f}% of a core"),
        ("the same: delay reelay adds, from a segment's end at the SABR server to its listing, p50 / p99 (max)",
         f"{r['live_p50_ms']:.0f} / {r['live_p99_ms']:.0f} ms ({r['live_max_ms']:.0f} ms; {r['live_segments']} segments)"),
    ]
    report = (f"SABR run {now:%Y-%m-%d %H:%M} UTC (`bench/sabr.py`{', ' + cpu_name if cpu_name else ''}; "
              f"the stand-in SABR server and the plain URLs from one origin, `bench/sabr_origin.rs`).\n\n"
              f"{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("sabr", report, "SABR against plain URLs")


if __name__ == "__main__":
    main()
