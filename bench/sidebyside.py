#!/usr/bin/env python3
"""Two builds of reelay side by side in one run: the release binary of
another commit (`--base`) and of the working tree, against the same nginx
origin, taking turns so that the shared machine's drift falls on both alike:

- idle RSS;
- wrk -c50 on `/health` and on a hot `/api/v2/videos/youtube/{id}` (20
  formats, ~23 KB);
- cold relays of the 200 MB file (a new video each time, its info cached)
  and hot ones (the same video again, from the store), with nginx
  `proxy_pass` as the yardstick.

    bench/sidebyside.py --base ce62e84 [--downloads 7] [--duration 5] [--no-write]

The base is built in a git worktree under target/bench-base (kept, so a
second run reuses it). Writes bench/results/sidebyside-<date>.md and the
table between the sidebyside markers in BENCHMARKS.md.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: nginx, reelay, wrk, curl downloads)

ROOT = run.ROOT


def build_base(rev):
    """The release binary of `rev`, built in its own worktree and target folder."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    tree = ROOT / "target" / "bench-base" / sha
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target" / "bench-base" / "target"))
    # As that commit shipped it: its scripts/build where it has one.
    build = ["scripts/build", "--quiet"] if (tree / "scripts" / "build").exists() else \
        ["cargo", "build", "--release", "--quiet", "--bin", "reelay"]
    subprocess.run(build, cwd=tree, env=env, check=True)
    binary = ROOT / "target" / "bench-base" / f"reelay-{sha}"
    subprocess.run(["cp", str(ROOT / "target" / "bench-base" / "target" / "release" / "reelay"), str(binary)], check=True)
    return sha, binary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the commit to compare with")
    ap.add_argument("--downloads", type=int, default=7)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    sha, base_bin = build_base(args.base)
    run.build()
    work, nginx = run.big_origin("reelay-bench-side-")
    origin = f"http://127.0.0.1:{nginx.port}"
    n, dur = args.downloads, args.duration
    builds = {"base": base_bin, "new": run.BIN}
    apps = {}
    r = {name: {"health": [], "video": [], "cold": [], "hot": []} for name in builds}
    try:
        run.wait_http(f"{origin}/page.html")
        for name, binary in builds.items():
            apps[name] = run.Reelay(work, origin, name=name, binary=binary)
            apps[name].first_200_ms()
        time.sleep(1.5)  # let the health refresh settle
        for name, app in apps.items():
            r[name]["idle_rss"] = run.rss_mb(app.proc.pid)
        proxy_pass = []
        for rnd in range(2):
            for name, app in apps.items():
                info = f"{app.base}/api/v2/videos/youtube/benchbenchb"
                run.get(info)
                r[name]["health"].append(run.wrk(f"{app.base}/health", 50, dur)["rps"])
                r[name]["video"].append(run.wrk(info, 50, dur)["rps"])
        for i in range(n):
            proxy_pass.append(run.download_mb_s(f"http://127.0.0.1:{nginx.proxy_port}/big.bin", 1))
            for name, app in apps.items():
                vid = f"bench{name[:3]}{i:03d}"
                run.get(f"{app.base}/api/v2/videos/youtube/{vid}")
                url = f"{app.base}/api/v2/stream/proxy/youtube/{vid}?quality=360p"
                r[name]["cold"].append(run.download_mb_s(url, 1))
                r[name]["hot"].append(run.download_mb_s(url, 1))
    finally:
        for app in apps.values():
            app.stop()
        nginx.stop()

    med = statistics.median
    pp = med(proxy_pass)
    now = datetime.datetime.now(datetime.timezone.utc)

    def spread(values):
        return f"{min(values):,.0f}–{max(values):,.0f}"

    rows = [("nginx `proxy_pass`, 200 MB", f"{pp:,.0f} MB/s (range {spread(proxy_pass)})")]
    for key, what, unit in [("cold", "cold relay, 200 MB", "MB/s"), ("hot", "hot relay, 200 MB", "MB/s"),
                            ("video", "hot video info, wrk -c50", "req/s"), ("health", "`/health`, wrk -c50", "req/s")]:
        b, v = med(r["base"][key]), med(r["new"][key])
        yard = f" = {b / pp:.2f}× → {v / pp:.2f}× `proxy_pass`" if unit == "MB/s" else ""
        rows.append((what, f"{b:,.0f} → {v:,.0f} {unit} ({v / b:.2f}×; ranges {spread(r['base'][key])} and "
                           f"{spread(r['new'][key])}){yard}"))
    rows.append(("idle RSS", f"{r['base']['idle_rss']:.1f} → {r['new']['idle_rss']:.1f} MB"))
    report = (f"Side by side {now:%Y-%m-%d %H:%M} UTC (`bench/sidebyside.py --base {sha}`): the release binary of "
              f"{sha} (before) and of the working tree (after), taking turns against one nginx; medians of "
              f"{n} downloads and of 2 wrk runs of {dur} s each.\n\n{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("sidebyside", report, "Side by side")


if __name__ == "__main__":
    main()
