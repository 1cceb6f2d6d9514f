#!/usr/bin/env python3
"""Manifests against the merge, side by side in one run (issue 12's figures):

- requests/s and CPU per request of `/health`, the streaming metrics, a hot
  `master.m3u8` and a hot media playlist (wrk -c50), against nginx serving
  the same bytes from a file (its workers' CPU too), and wrk's own CPU per
  request, which bounds what any server reaches on the two cores;
- the CPU (reelay and its ffmpeg children, from /proc) and the origin bytes
  for 10 viewers of one 60 s 1080p video with separate audio: through the
  manifest (each viewer fetches the init section and every segment of the
  video and the audio by byte range, as a player does) and through the merge
  (each downloads the proxy's fragmented MP4);
- muxed HLS (`player=avpro`): a segment of a 2-hour film from a cold store,
  a seek to its last minute, the CPU per segment made; and 10 players of the
  60 s video's muxed HLS: remuxes per segment, origin bytes, CPU.

    bench/manifest.py [--duration 10] [--no-write]

Writes bench/results/manifest-<date>.md and the table between the manifest
markers in BENCHMARKS.md.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: nginx, reelay, wrk)

ROOT = run.ROOT
VIEWERS = 10


def make_dash_pair(www: Path):
    """60 s of 1080p and its audio as YouTube's DASH files (the stand-in's
    `benchdash` videos)."""
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    subprocess.run(lavfi + ["-i", "testsrc2=size=1920x1080:rate=30", "-t", "60", "-c:v", "libx264", "-preset", "ultrafast",
                            "-g", "150", "-sc_threshold", "0", "-movflags", "+dash+global_sidx", "-f", "mp4",
                            str(www / "dash1080.mp4")], check=True)
    subprocess.run(lavfi + ["-i", "sine=frequency=440:sample_rate=44100", "-t", "60", "-c:a", "aac", "-frag_duration",
                            "5000000", "-movflags", "+dash+global_sidx", "-f", "mp4", str(www / "dash-a.m4a")], check=True)


def make_media(www: Path):
    make_dash_pair(www)
    lavfi = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    # A 2-hour film, small: 5 s video fragments and 10 s audio ones, as YouTube's.
    subprocess.run(lavfi + ["-i", "testsrc=size=320x180:rate=10", "-t", "7200", "-c:v", "libx264", "-preset", "ultrafast",
                            "-g", "50", "-sc_threshold", "0", "-b:v", "100k", "-movflags", "+dash+global_sidx", "-f", "mp4",
                            str(www / "dash2h.mp4")], check=True)
    subprocess.run(lavfi + ["-i", "sine=frequency=440:sample_rate=44100", "-t", "7200", "-c:a", "aac", "-b:a", "64k",
                            "-frag_duration", "10000000", "-movflags", "+dash+global_sidx", "-f", "mp4",
                            str(www / "dash2h-a.m4a")], check=True)
    (www / "big.bin").write_bytes(b"\0" * 1024)
    (www / "page.html").write_text("<html></html>")


def wrk_rps(url, seconds, pid=None, cpu=None):
    """Requests/s of wrk -t2 -c50 (and non-2xx answers, which must be none);
    with `pid`, appends that process's CPU microseconds per request to `cpu`
    (a figure the shared machine's drift moves less than a rate)."""
    return wrk_costs(url, seconds, (lambda: run.cpu_s(pid)) if pid else None, cpu)


def wrk_costs(url, seconds, server_cpu=None, cpu=None, wrk_cpu=None):
    """`wrk_rps`, with the server's CPU read by `server_cpu()` (seconds so far)
    and wrk's own CPU per request appended to `wrk_cpu`: what the load itself
    costs the two cores it shares with the server."""
    before = server_cpu() if server_cpu else 0.0
    w = run.wrk(url, 50, seconds)
    assert not w["non2xx"], w
    if server_cpu:
        cpu.append((server_cpu() - before) / w["requests"] * 1e6)
    if wrk_cpu is not None:
        wrk_cpu.append(w["wrk_us"])
    return w["rps"]


def playlist_uris(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def play_through_manifest(base, master_path):
    """What a player does: master, both media playlists, every byte range."""
    master = run.get(base + master_path)[1].decode()
    uris = playlist_uris(master) + re.findall(r'TYPE=AUDIO,.*?URI="([^"]+)"', master)
    total = 0
    for uri in uris:
        media = run.get(base + uri)[1].decode()
        for m in re.finditer(r'#EXT-X-MAP:URI="([^"]+)",BYTERANGE="(\d+)@(\d+)"', media):
            total += fetch_range(base + m.group(1), int(m.group(3)), int(m.group(2)))
        lines = media.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("#EXT-X-BYTERANGE:"):
                n, off = line.split(":", 1)[1].split("@")
                uri = next(u for u in lines[i + 1:] if u and not u.startswith("#"))
                total += fetch_range(base + uri, int(off), int(n))
    return total


def fetch_range(url, offset, length):
    status, body = run.get(url, {"Range": f"bytes={offset}-{offset + length - 1}"})
    assert status == 206 and len(body) == length, (status, len(body), length)
    return length


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    run.build()
    work = Path(tempfile.mkdtemp(prefix="reelay-bench-manifest-"))
    work.chmod(0o755)
    www = work / "www"
    www.mkdir()
    make_media(www)
    nginx = run.Nginx(work)
    origin = f"http://127.0.0.1:{nginx.port}"
    r = {}
    try:
        app = run.Reelay(work, origin)
        app.first_200_ms()
        master_path = "/api/v2/stream/manifest/youtube/benchdash01/master.m3u8"
        status, master = run.get(app.base + master_path)
        assert status == 200, master[:300]
        media_path = playlist_uris(master.decode())[0]
        (www / "master.m3u8").write_bytes(master)
        (www / "media.m3u8").write_bytes(run.get(app.base + media_path)[1])
        metrics_path = "/api/v2/stream/metrics"
        (www / "health.json").write_bytes(run.get(app.base + "/health")[1])
        (www / "metrics.json").write_bytes(run.get(app.base + metrics_path)[1])
        # nginx logs a line per request where reelay does (playlists), and
        # none where reelay logs none (health and metrics, from /quiet/).
        r["wrk_cpu"] = []
        for name, url, ref in [("health", app.base + "/health", f"{origin}/quiet/health.json"),
                               ("metrics", app.base + metrics_path, f"{origin}/quiet/metrics.json"),
                               ("master", app.base + master_path, f"{origin}/master.m3u8"),
                               ("media", app.base + media_path, f"{origin}/media.m3u8")]:
            r[f"{name}_cpu"], r[f"{name}_nginx_cpu"] = [], []
            r[f"{name}_rps"] = wrk_costs(url, args.duration, lambda: run.cpu_s(app.proc.pid), r[f"{name}_cpu"], r["wrk_cpu"])
            r[f"{name}_nginx_rps"] = wrk_costs(ref, args.duration, nginx.cpu_s, r[f"{name}_nginx_cpu"], r["wrk_cpu"])
            r[f"{name}_bytes"] = len(run.get(url)[1])
        # wrk's own cost bounds every rate here: on two cores, with wrk at W
        # µs of CPU per request, no server answers more than 2 s / W a second.
        r["wrk_us"] = sorted(r["wrk_cpu"])[len(r["wrk_cpu"]) // 2]

        # 10 viewers through the manifest (a fresh video: nothing stored yet).
        sent = lambda: nginx.sent("/dash1080.mp4") + nginx.sent("/dash-a.m4a")  # noqa: E731
        size = (www / "dash1080.mp4").stat().st_size + (www / "dash-a.m4a").stat().st_size
        before_cpu, before_sent, t = run.cpu_s(app.proc.pid), sent(), time.perf_counter()
        path = "/api/v2/stream/manifest/youtube/benchdash02/master.m3u8"
        with ThreadPoolExecutor(VIEWERS) as pool:
            got = list(pool.map(lambda _: play_through_manifest(app.base, path), range(VIEWERS)))
        r["manifest_s"] = time.perf_counter() - t
        r["manifest_cpu"] = run.cpu_s(app.proc.pid) - before_cpu
        r["manifest_copies"] = (sent() - before_sent) / size
        r["manifest_bytes"] = got[0]

        # 10 viewers through the merge (another fresh video).
        before_cpu, before_sent, t = run.cpu_s(app.proc.pid), sent(), time.perf_counter()
        merges = app.prom("reelay_relay_merges_total")
        got = run.concurrent_downloads(f"{app.base}/api/v2/stream/proxy/youtube/benchdash03?quality=1080p", VIEWERS)
        r["merge_s"] = time.perf_counter() - t
        time.sleep(1)  # ffmpeg exits and is reaped
        r["merge_cpu"] = run.cpu_s(app.proc.pid) - before_cpu
        r["merge_copies"] = (sent() - before_sent) / size
        r["merge_ffmpegs"] = app.prom("reelay_relay_merges_total") - merges

        # Muxed HLS (player=avpro): a cold segment, a seek to the last minute
        # of a 2-hour film, the CPU per segment; then 10 players of one video.
        master = run.get(app.base + "/api/v2/stream/manifest/youtube/benchlong01/master.m3u8?player=avpro")[1]
        long_media = run.get(app.base + playlist_uris(master.decode())[0])[1].decode()
        segs = playlist_uris(long_media)
        r["long_segments"] = len(segs)
        t = time.perf_counter()
        run.get(app.base + segs[0])
        r["cold_ms"] = (time.perf_counter() - t) * 1000
        long_sent = lambda: nginx.sent("/dash2h.mp4") + nginx.sent("/dash2h-a.m4a")  # noqa: E731
        before_sent = long_sent()
        t = time.perf_counter()
        r["seek_bytes"] = len(run.get(app.base + segs[-6])[1])  # 30 s before the end: the last minute
        r["seek_ms"] = (time.perf_counter() - t) * 1000
        r["seek_origin"] = long_sent() - before_sent
        # The film's plain HLS (byte ranges of its DASH video file), its
        # segment at 1:30:00 asked first: a seek's exact read.
        plain = run.get(app.base + "/api/v2/stream/manifest/youtube/benchlong01/master.m3u8")[1].decode()
        plain_media = run.get(app.base + playlist_uris(plain)[0])[1].decode()
        ranges, byterange = [], None
        for line in plain_media.splitlines():
            if line.startswith("#EXT-X-BYTERANGE:"):
                byterange = line.split(":", 1)[1].split("@")
            elif line and not line.startswith("#") and byterange:
                ranges.append((*byterange, line))
                byterange = None
        length, offset, uri = ranges[5400 // 5]
        before_sent = long_sent()
        t = time.perf_counter()
        rng = f"bytes={offset}-{int(offset) + int(length) - 1}"
        r["plain_bytes"] = len(run.get(app.base + uri, {"Range": rng})[1])
        r["plain_ms"] = (time.perf_counter() - t) * 1000
        r["plain_origin"] = long_sent() - before_sent

        before_cpu, written = run.cpu_s(app.proc.pid), app.prom("reelay_relay_muxed_segments_total")
        remuxes = app.prom("reelay_relay_remuxed_segments_total")
        for s in segs[100:120]:
            run.get(app.base + s)
        r["remux_cpu_per_segment"] = (run.cpu_s(app.proc.pid) - before_cpu) / 20
        r["segments_written"] = app.prom("reelay_relay_muxed_segments_total") - written
        r["segments_remuxed"] = app.prom("reelay_relay_remuxed_segments_total") - remuxes

        remuxes, before_sent = app.prom("reelay_relay_remuxed_segments_total"), sent()
        written = app.prom("reelay_relay_muxed_segments_total")
        path = "/api/v2/stream/manifest/youtube/benchdash04/master.m3u8?player=avpro"
        media = run.get(app.base + playlist_uris(run.get(app.base + path)[1].decode())[0])[1].decode()
        segs = playlist_uris(media)

        def play_muxed(_):
            return sum(len(run.get(app.base + s)[1]) for s in segs)

        before_cpu = run.cpu_s(app.proc.pid)
        with ThreadPoolExecutor(VIEWERS) as pool:
            list(pool.map(play_muxed, range(VIEWERS)))
        time.sleep(0.5)
        r["muxed_cpu"] = run.cpu_s(app.proc.pid) - before_cpu
        r["muxed_segments"] = len(segs)
        r["muxed_remuxes"] = app.prom("reelay_relay_remuxed_segments_total") - remuxes
        r["muxed_written"] = app.prom("reelay_relay_muxed_segments_total") - written
        r["muxed_copies"] = (sent() - before_sent) / size
        app.stop()
    finally:
        nginx.stop()

    now = datetime.datetime.now(datetime.timezone.utc)
    rows = [
        ("the load itself: wrk's CPU per request (median of the runs below)",
         f"{r['wrk_us']:.1f} µs: on 2 cores no server can answer more than {2e6 / r['wrk_us']:,.0f} req/s under this load"),
        *[(label, f"{r[n + '_rps']:,.0f} req/s ({r[n + '_bytes']:,} B) = {r[n + '_rps'] / r[n + '_nginx_rps']:.2f}× nginx "
                  f"serving it from a file ({r[n + '_nginx_rps']:,.0f}); CPU per request {r[n + '_cpu'][0]:.1f} µs "
                  f"(nginx {r[n + '_nginx_cpu'][0]:.1f})")
          for n, label in [("health", "`/health`, c50"),
                           ("metrics", "`/api/v2/stream/metrics`, c50"),
                           ("master", "hot `master.m3u8` (one 1080p variant, one audio rendition), c50"),
                           ("media", "hot media playlist (12 segments), c50")]],
        (f"{VIEWERS} viewers of one 60 s 1080p video + audio, through the manifest", f"CPU {r['manifest_cpu']:.2f} s, no ffmpeg, origin {r['manifest_copies']:.2f}× the files, {r['manifest_s']:.1f} s"),
        ("the same through the merge (`proxy?quality=1080p`)", f"CPU {r['merge_cpu']:.2f} s with {r['merge_ffmpegs']:.0f} ffmpeg, origin {r['merge_copies']:.2f}× the files, {r['merge_s']:.1f} s"),
        ("muxed HLS (`player=avpro`) of a 2-hour film: a segment from a cold store; a seek to the last minute",
         f"{r['cold_ms']:.0f} ms; {r['seek_ms']:.0f} ms ({r['long_segments']} segments of 5 s); the seek's segment "
         f"{r['seek_bytes'] / 1024:.0f} KiB, the origin sent {r['seek_origin'] / 1024:.0f} KiB for it"),
        ("the film's plain HLS (byte ranges of the DASH video), its segment at 1:30:00 asked first",
         f"{r['plain_ms']:.0f} ms; the segment {r['plain_bytes'] / 1024:.0f} KiB, "
         f"the origin sent {r['plain_origin'] / 1024:.0f} KiB for it"),
        ("muxed HLS: CPU per segment made (ffmpeg included, if any), against the merge's per second of video",
         f"{r['remux_cpu_per_segment'] * 1000:.1f} ms per 5 s segment of 180p ({r['segments_written']:.0f} written in process, "
         f"{r['segments_remuxed']:.0f} by ffmpeg); the merge {r['merge_cpu'] / 60 * 1000:.0f} ms per second of 1080p"),
        (f"{VIEWERS} players of one muxed HLS (60 s 1080p + audio, every segment)",
         f"{r['muxed_written']:.0f} written in process and {r['muxed_remuxes']:.0f} by ffmpeg for {r['muxed_segments']} segments, "
         f"origin {r['muxed_copies']:.2f}× the files, "
         f"CPU {r['muxed_cpu']:.2f} s ({r['muxed_cpu'] / 60 * 1000:.0f} ms per second of video; the merge's above: "
         f"{r['merge_cpu'] / 60 * 1000:.0f} ms)"),
    ]
    report = (f"Manifest run {now:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({run.cpu_model()}) "
              f"(`bench/manifest.py`, wrk -t2 -c50 -d{args.duration}s; "
              f"CPU is reelay's and its children's user+system time from /proc).\n\n{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("manifest", report, "Manifests against the merge")


if __name__ == "__main__":
    main()
