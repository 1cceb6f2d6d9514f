#!/usr/bin/env python3
"""cobalt's API and the audio transcodes behind it (issue 23's figures), in
one run:

- 20 clients ask `POST /cobalt/` for the same 5-minute song as mp3 and fetch
  their tunnels at once: ffmpeg encodes counted (`reelay_relay_transcodes_total`),
  the source's bytes the origin sent against its size, the files' sha256,
  and the CPU of reelay and its ffmpeg children (from /proc) against the
  song's length;
- requests/s of `POST /cobalt/` on a warm cache against reelay's own
  `GET /api/v2/videos/youtube/{id}` for the same video (wrk -c50), so the
  translation's cost is a ratio to the route it translates to.

    bench/cobalt.py [--duration 10] [--clients 20] [--no-write]

Writes bench/results/cobalt-<date>.md and the table between the cobalt
markers in BENCHMARKS.md.
"""
import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: nginx, reelay, wrk)
from manifest import wrk_rps  # noqa: E402

SONG_S = 300


def post(base, body):
    req = urllib.request.Request(f"{base}/cobalt/", data=json.dumps(body).encode(), method="POST",
                                 headers={"Accept": "application/json", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def fetch(url):
    with urllib.request.urlopen(url) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    run.build()
    work = Path(tempfile.mkdtemp(prefix="reelay-bench-cobalt-"))
    work.chmod(0o755)
    www = work / "www"
    www.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-t", str(SONG_S), "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
                    str(www / "song.m4a")], check=True)
    (www / "big.bin").write_bytes(b"\0" * 1024)
    (www / "page.html").write_text("<html></html>")
    nginx = run.Nginx(work)
    origin = f"http://127.0.0.1:{nginx.port}"
    r = {}
    try:
        app = run.Reelay(work, origin)
        app.first_200_ms()
        song = "https://www.youtube.com/watch?v=benchsong01"
        ask = {"url": song, "downloadMode": "audio", "audioFormat": "mp3"}
        before_runs, before_cpu = app.prom("reelay_relay_transcodes_total"), run.cpu_s(app.proc.pid)
        t = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(lambda _: post(app.base, ask), range(args.clients)))
            assert all(a["status"] == "tunnel" for a in answers), answers[0]
            files = list(pool.map(lambda a: fetch(a["url"]), answers))
        r["wall_s"] = time.perf_counter() - t
        r["cpu_s"] = run.cpu_s(app.proc.pid) - before_cpu
        r["encodes"] = app.prom("reelay_relay_transcodes_total") - before_runs
        r["digests"] = len({hashlib.sha256(f).hexdigest() for f in files})
        r["mb"] = len(files[0]) / 1e6
        r["copies"] = nginx.sent("/song.m4a") / (www / "song.m4a").stat().st_size

        # The translation's cost: a warm POST /cobalt/ against the info route.
        lua = work / "post.lua"
        lua.write_text('wrk.method = "POST"\n'
                       f"wrk.body = '{json.dumps({'url': song})}'\n"
                       'wrk.headers["Accept"] = "application/json"\n'
                       'wrk.headers["Content-Type"] = "application/json"\n')
        info = f"{app.base}/api/v2/videos/youtube/benchsong01"
        run.get(info)
        post(app.base, {"url": song})
        cobalt, own = [], []
        for _ in range(2):
            cobalt.append(wrk_lua(f"{app.base}/cobalt/", lua, args.duration))
            own.append(wrk_rps(info, args.duration))
        r["cobalt_rps"], r["own_rps"] = max(cobalt), max(own)
        app.stop()
    finally:
        nginx.stop()

    now = datetime.datetime.now(datetime.timezone.utc)
    rows = [
        (f"{args.clients} clients ask for the same {SONG_S // 60}-minute song as mp3 at once (`POST /cobalt/`, then each its tunnel)",
         f"{r['encodes']:.0f} ffmpeg encode, origin sent {r['copies']:.2f}× the source, {r['digests']} distinct file(s) "
         f"of {r['mb']:.1f} MB, {r['wall_s']:.1f} s for all"),
        ("CPU of that encode (reelay and ffmpeg), against the song's length",
         f"{r['cpu_s']:.2f} s for {SONG_S} s of audio ({r['cpu_s'] / SONG_S * 1000:.1f} ms per second of audio)"),
        ("`POST /cobalt/` on a warm cache, c50, against reelay's own `GET /api/v2/videos/…` of the same video",
         f"{r['cobalt_rps']:,.0f} req/s = {r['cobalt_rps'] / r['own_rps']:.2f}× the info route ({r['own_rps']:,.0f})"),
    ]
    report = (f"cobalt run {now:%Y-%m-%d %H:%M} UTC (`bench/cobalt.py`, wrk -t2 -c50 -d{args.duration}s, best of two; "
              f"CPU is reelay's and its children's user+system time from /proc).\n\n{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("cobalt", report, "cobalt's API and audio transcodes")


def wrk_lua(url, script, seconds):
    """Requests/s of wrk -t2 -c50 with a request script (and no non-2xx)."""
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out
    return float(out.split("Requests/sec:")[1].split()[0])


if __name__ == "__main__":
    main()
