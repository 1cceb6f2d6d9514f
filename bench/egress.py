#!/usr/bin/env python3
"""The relay through an egress (issue 11's figures), in one run against the
same origin (nginx serving 200 MB of noise):

- nginx `proxy_pass` (the yardstick of bench/run) and curl through
  tinyproxy (Debian's forward proxy: what the proxy alone manages);
- reelay's cold relay (a new video each time, its info cached) with no
  egress, through tinyproxy (`EGRESS_PROXIES`), and from random addresses
  of 127.0.0.0/8 (`EGRESS_SOURCE_CIDR`): three instances taking turns.

The ratios are the figures that count: what an egress costs the relay, and
the relay through a proxy against the proxy alone.

    bench/egress.py [--downloads 5] [--no-write]

Writes bench/results/egress-<date>.md and the table between the egress
markers in BENCHMARKS.md.
"""
import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: nginx, reelay, curl downloads)

ROOT = run.ROOT


class Tinyproxy:
    """Debian's tinyproxy on a spare port, forwarding to anything on loopback."""

    def __init__(self, work: Path):
        self.port = run.free_port()
        conf = work / "tinyproxy.conf"
        conf.write_text(f"Port {self.port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 200\n"
                        f"Allow 127.0.0.1\nLogLevel Critical\nLogFile \"{work}/tinyproxy.log\"\n"
                        f"PidFile \"{work}/tinyproxy.pid\"\nDisableViaHeader Yes\n")
        self.proc = subprocess.Popen([shutil.which("tinyproxy") or "/usr/bin/tinyproxy", "-d", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def ensure_tinyproxy():
    if shutil.which("tinyproxy") or Path("/usr/bin/tinyproxy").exists():
        return
    run.log("bench: installing tinyproxy from Debian's packages")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "tinyproxy"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def through_curl_proxy_mb_s(url, proxy, times):
    speeds = []
    for _ in range(times):
        out = subprocess.run(["curl", "-s", "-x", proxy, "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                             capture_output=True, text=True, check=True).stdout.split()
        size, secs = int(out[0]), float(out[1])
        assert size == run.BIG_MB * 1024 * 1024, f"short download through the proxy: {size}"
        speeds.append(size / secs / 1e6)
    return statistics.median(speeds)


def cold_relays(work, origin, configs, n):
    """Median MB/s of `n` cold relays of the 200 MB file (a new video each)
    per configuration; the configurations take turns, so that the shared
    machine's drift falls on all of them alike."""
    apps = {name: run.Reelay(work, origin, extra_env=env, name=name) for name, env in configs.items()}
    try:
        for app in apps.values():
            app.first_200_ms()
        speeds = {name: [] for name in apps}
        for i in range(n):
            for name, app in apps.items():
                vid = f"bench{name[:3]}{i:03d}"
                run.get(f"{app.base}/api/v2/videos/youtube/{vid}")
                speeds[name].append(run.download_mb_s(f"{app.base}/api/v2/stream/proxy/youtube/{vid}?quality=360p", 1))
        return {name: statistics.median(v) for name, v in speeds.items()}
    finally:
        for app in apps.values():
            app.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--downloads", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    ensure_tinyproxy()
    run.build()
    work, nginx = run.big_origin("reelay-bench-egress-")
    proxy = Tinyproxy(work)
    origin = f"http://127.0.0.1:{nginx.port}"
    n = args.downloads
    r = {}
    try:
        run.wait_http(f"{origin}/page.html")
        r["proxy_pass"] = run.download_mb_s(f"http://127.0.0.1:{nginx.proxy_port}/big.bin", n)
        r["tinyproxy"] = through_curl_proxy_mb_s(f"{origin}/big.bin", proxy.url, n)
        r.update(cold_relays(work, origin, {
            "direct": {},
            "proxied": {"EGRESS_PROXIES": proxy.url},
            "source": {"EGRESS_SOURCE_CIDR": "127.0.0.0/8"},
        }, n))
    finally:
        proxy.stop()
        nginx.stop()

    now = datetime.datetime.now(datetime.timezone.utc)
    mb = run.BIG_MB
    rows = [
        (f"nginx `proxy_pass`, {mb} MB", f"{r['proxy_pass']:,.0f} MB/s"),
        (f"curl through tinyproxy, {mb} MB", f"{r['tinyproxy']:,.0f} MB/s"),
        ("reelay cold relay, no egress", f"{r['direct']:,.0f} MB/s = {r['direct'] / r['proxy_pass']:.2f}× `proxy_pass`"),
        ("reelay cold relay through tinyproxy (`EGRESS_PROXIES`)",
         f"{r['proxied']:,.0f} MB/s = {r['proxied'] / r['tinyproxy']:.2f}× curl through the same proxy, "
         f"{r['proxied'] / r['direct']:.2f}× no egress"),
        ("reelay cold relay from 127.0.0.0/8 (`EGRESS_SOURCE_CIDR`)",
         f"{r['source']:,.0f} MB/s = {r['source'] / r['direct']:.2f}× no egress"),
    ]
    report = (f"Egress run {now:%Y-%m-%d %H:%M} UTC (`bench/egress.py`, medians of {n} curl downloads; "
              f"cold: a new video each time, its info cached).\n\n{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("egress", report, "The relay through an egress")


if __name__ == "__main__":
    main()
