#!/usr/bin/env python3
"""The release binary's code layout (`link/text.order`, read by build.rs):
the functions that run at start-up and while idle first, then those that
serve the hot routes, so an idle instance maps a few hundred KiB of code, not
the 6 MB its scattered start-up code made the kernel's 64 KiB read-around
map, and the hot routes' code sits together.

    bench/text_order.py          # measure, write link/text.order, rebuild, measure again
    bench/text_order.py --check  # how many of the file's names the built binary has
    bench/text_order.py --check --min 0.9  # and fail below 90% (.ci/run)

Runs the release binary under callgrind (which counts every function that
runs, however short) twice: start-up, `/health`, `/ready`, metrics and 3 s
idle; then the same followed by a video's info, its HLS master, media
playlist and a segment, a proxy range and the small routes again.
Function names carry a hash that changes with the compiler or a dependency's
version, and the project's own changes rename the generic functions the hot
routes instantiate (moving `observe` around the router left 1,147 of 2,600
names and took the idle RSS from 5.0 to 7.7 MB). Names the binary no longer
has are skipped; `--check --min` in `.ci/run` fails when too many are gone,
and this script makes the file again. Prints the idle RSS before and after.
"""
import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest  # noqa: E402  (its DASH pair)
import run  # noqa: E402

ORDER = run.ROOT / "link" / "text.order"
HEADER = """# Code layout of the release binary (build.rs passes it to LLD): the
# functions that ran at start-up and while idle, then those of the hot
# routes. Made by bench/text_order.py; names the build lacks are skipped.
"""


def text_symbols(binary):
    """Function name -> address, of the binary's code."""
    out = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            syms[parts[2]] = int(parts[0], 16)
    return syms


def ran(dump: Path):
    """The functions a callgrind dump saw run (names are given once, then
    by number)."""
    names = set()
    for line in dump.read_text(errors="replace").splitlines():
        m = re.match(r"c?fn=\(\d+\) (.+)", line)
        if m:
            names.add(m.group(1).strip())
    return names


def hit(url, headers=None):
    """A request whose answer does not matter (`/ready` is 503 until the
    first yt-dlp check has answered), only the code it runs."""
    try:
        run.get(url, headers)
    except urllib.error.HTTPError:
        pass


def idle_rss_mb(work, origin):
    app = run.Reelay(work, origin, name="rss")
    app.first_200_ms()
    time.sleep(1.5)
    rss = run.rss_mb(app.proc.pid)
    app.stop()
    return rss


def under_callgrind(work: Path, origin: str, name: str, hot: bool):
    """The function names the binary ran under callgrind: start-up,
    `/health`, `/ready`, metrics and 3 s idle; with `hot`, then a video's
    info, its HLS master, media playlist and a segment, a proxy range and
    the small routes again."""
    out = work / f"{name}.callgrind"
    wrapper = work / f"{name}-valgrind"
    wrapper.write_text(f"#!/bin/sh\nexec valgrind --tool=callgrind --demangle=no --callgrind-out-file={out} {run.BIN} \"$@\"\n")
    wrapper.chmod(0o755)
    app = run.Reelay(work, origin, name=name, binary=wrapper)
    run.wait_http(f"{app.base}/health", timeout=60)  # first_200_ms gives up after 10 s; valgrind starts slower
    for path in ("/ready", "/api/v2/stream/metrics", "/health"):
        hit(app.base + path)
    time.sleep(3)
    if hot:
        info = run.get(f"{app.base}/api/v2/videos/youtube/benchdash01")
        assert info[0] == 200, info[1][:200]
        master = run.get(f"{app.base}/api/v2/stream/manifest/youtube/benchdash01/master.m3u8")[1].decode()
        media = manifest.playlist_uris(master)[0]
        playlist = run.get(app.base + media)[1].decode()
        segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
        hit(segment if segment.startswith("http") else app.base + segment)
        hit(f"{app.base}/api/v2/videos/youtube/benchbenchb")
        hit(f"{app.base}/api/v2/stream/proxy/youtube/benchbenchb?quality=360p", {"Range": "bytes=0-4194303"})
        for path in ("/health", "/ready", "/api/v2/stream/metrics", media):
            hit(app.base + path)
    app.proc.send_signal(2)
    app.proc.wait(timeout=120)
    return ran(out)


def check(least):
    names = [line.strip() for line in ORDER.read_text().splitlines() if line.strip() and not line.startswith("#")]
    have = text_symbols(run.BIN)
    found = sum(1 for n in names if n in have)
    print(f"link/text.order: {found:,} of {len(names):,} names in {run.BIN.relative_to(run.ROOT)}")
    if found < least * len(names):
        sys.exit(f"link/text.order: under {least:.0%} of its names are in the binary, so idle code is scattered "
                 "again (idle RSS +2-3 MB); run bench/text_order.py to make it again")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--min", type=float, default=0.0, help="with --check: the share of names that must be found")
    args = ap.parse_args()
    run.build()
    if args.check:
        check(args.min)
        return
    run.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="reelay-text-order-"))
    work.chmod(0o755)
    www = work / "www"
    www.mkdir()
    manifest.make_dash_pair(www)
    with open(www / "big.bin", "wb") as f:
        f.write(b"\1" * (8 << 20))
    (www / "page.html").write_text("<html></html>")
    nginx = run.Nginx(work)
    origin = f"http://127.0.0.1:{nginx.port}"
    try:
        before = idle_rss_mb(work, origin)
        idle = under_callgrind(work, origin, "idle", hot=False)
        hot = under_callgrind(work, origin, "hot", hot=True)
        syms = text_symbols(run.BIN)
        first = sorted((n for n in idle if n in syms), key=syms.get)
        then = sorted((n for n in hot - idle if n in syms), key=syms.get)
        ORDER.parent.mkdir(exist_ok=True)
        ORDER.write_text(HEADER + "".join(n + "\n" for n in first + then))
        print(f"link/text.order: {len(first):,} functions of start-up and idle, then {len(then):,} of the hot routes")
        run.build()
        after = idle_rss_mb(work, origin)
        print(f"idle RSS: {before:.1f} MB with the old layout, {after:.1f} MB with the new")
        check(0.0)
    finally:
        nginx.stop()


if __name__ == "__main__":
    main()
