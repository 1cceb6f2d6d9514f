#!/usr/bin/env python3
"""Live streams for crowds, side by side in one run (issue 20's figures).

A live origin made from the wall clock (Twitch-shaped: 2 s segments, a
window of 5, PROGRAM-DATE-TIME, prefetch lines) serves one channel. The
same HLS players (reload every target duration after a change, half of it
after none; start three segments behind the edge; fetch each new segment;
play 2 s per segment and count a stall when the next one is not there)
watch it through reelay's proxy and, as the yardstick, straight from the
origin, at the same time:

- origin playlist fetches per second (reelay's session), per segment;
- the delay behind the live edge: when each player first sees a segment,
  against the segment's end; reelay's players against the origin's own
  (p50 and p99 of the difference of the distributions);
- stalls, media sequence going back, playlists naming the origin;
- at 200 and at 1,000 players; then 50 channels x 20 players at once:
  reelay's CPU and peak RSS;
- a channel that ends (its session refused, then "not live"): how long
  after the origin's refusal players get EXT-X-ENDLIST.

    bench/live.py [--seconds 30] [--no-write]

Writes bench/results/live-<date>.md and the table between the live markers
in BENCHMARKS.md.
"""
import argparse
import asyncio
import datetime
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402

SEGMENT = 2.0
WINDOW = 5
SEGMENT_BYTES = 64 * 1024
YARDSTICK_PLAYERS = 100


def now_n():
    return int(time.time() / SEGMENT)


def iso(n):
    return datetime.datetime.fromtimestamp(n * SEGMENT, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Counts:
    """What the origin was asked: per path kind, by reelay (session=) or players."""

    def __init__(self):
        self.lock = threading.Lock()
        self.playlists = defaultdict(int)  # (channel, variant, who) -> n
        self.segments = defaultdict(int)  # (channel, variant, n, who) -> n

    def add(self, table, key):
        with self.lock:
            table[key] += 1


COUNTS = Counts()
PAYLOAD = os.urandom(SEGMENT_BYTES)
# When the origin first refused each channel's session (its `until=` passed).
REFUSED = {}


class LiveOrigin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urlsplit(self.path)
        parts = u.path.strip("/").split("/")
        q = parse_qs(u.query)
        who = "reelay" if "session" in q else "player"
        if len(parts) != 4 or parts[0] != "live":
            return self.reply(404, b"", "text/plain")
        _, channel, variant, name = parts
        if name == "index.m3u8":
            COUNTS.add(COUNTS.playlists, (channel, variant, who))
            until = q.get("until", [None])[0]
            if until and time.time() > int(until):
                # The session is over (a Twitch token ran out): 403.
                REFUSED.setdefault(channel, time.time())
                return self.reply(403, b"", "text/plain")
            return self.reply(200, self.playlist(channel, variant, u.query).encode(), "application/vnd.apple.mpegurl")
        n = int(name.split(".")[0])
        if n >= now_n():
            return self.reply(404, b"", "text/plain")
        COUNTS.add(COUNTS.segments, (channel, variant, n, who))
        return self.reply(200, PAYLOAD, "video/mp2t")

    def playlist(self, channel, variant, query):
        host = self.headers.get("host")
        base = f"http://{host}/live/{channel}/{variant}"
        now = now_n()
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", f"#EXT-X-MEDIA-SEQUENCE:{now - WINDOW}",
                 f'#EXT-X-TWITCH-INFO:NODE="video-edge-bench",USER-IP="{self.client_address[0]}"']
        for n in range(now - WINDOW, now):
            lines += [f"#EXT-X-PROGRAM-DATE-TIME:{iso(n)}", "#EXTINF:2.000,live", f"{base}/{n}.ts?{query}"]
        lines += [f"#EXT-X-TWITCH-PREFETCH:{base}/{n}.ts?{query}" for n in (now, now + 1)]
        return "\n".join(lines) + "\n"

    def reply(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Player:
    """One HLS player on one keep-alive connection."""

    def __init__(self, host, port, path, origin_host):
        self.host, self.port, self.path, self.origin_host = host, port, path, origin_host
        self.seen = {}  # wall-clock segment number -> time first listed
        self.stalls = 0
        self.backwards = 0
        self.leaks = 0
        self.errors = 0
        self.playlists = 0

    async def request(self, path):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await self.reader.readexactly(length)
        return status, body

    async def run(self, until):
        self.writer = None
        last_seq, fetched, play_start, first = -1, set(), None, None
        while time.time() < until:
            try:
                status, body = await self.request(self.path)
            except (OSError, asyncio.IncompleteReadError):
                self.errors += 1
                self.writer = None
                await asyncio.sleep(1)
                continue
            t = time.time()
            if status != 200:
                self.errors += 1
                await asyncio.sleep(1)
                continue
            self.playlists += 1
            text = body.decode()
            if self.origin_host and (self.origin_host in text or "TWITCH" in text):
                self.leaks += 1
            seq, date, segs = None, None, []
            for line in text.splitlines():
                if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                    seq = int(line.split(":")[1])
                elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                    d = datetime.datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00"))
                    date = round(d.timestamp() / SEGMENT)
                elif line and not line.startswith("#"):
                    segs.append((date, line))
                    date = date + 1 if date is not None else None
            if seq is not None and seq < last_seq:
                self.backwards += 1
            last_seq = seq if seq is not None else last_seq
            changed = False
            for n, _ in segs:
                if n not in self.seen:
                    self.seen[n] = t
                    changed = True
            if first is None and len(segs) >= 3:
                first = segs[-3][0]
            for n, link in segs:
                if first is not None and n >= first and n not in fetched:
                    fetched.add(n)
                    path = link if link.startswith("/") else urlsplit(link)._replace(scheme="", netloc="").geturl()
                    try:
                        await self.request(path)
                    except (OSError, asyncio.IncompleteReadError):
                        self.errors += 1
                        self.writer = None
                    if play_start is None:
                        play_start = (time.time(), n)
                    elif time.time() > play_start[0] + (n - play_start[1]) * SEGMENT:
                        # The segment arrived after its turn to play.
                        self.stalls += 1
                        play_start = (time.time(), n)
            await asyncio.sleep(SEGMENT if changed else SEGMENT / 2)
        if self.writer:
            self.writer.close()


async def crowd(port, paths, players_each, seconds, origin_host):
    until = time.time() + seconds
    players = [Player("127.0.0.1", port, p, origin_host) for p in paths for _ in range(players_each)]

    async def start(p, i):
        # Players start at every phase of the segment clock, the same spread
        # in every group, so the groups' sightings compare.
        await asyncio.sleep((i * 0.618034) % 1.0 * SEGMENT)
        await p.run(until)

    await asyncio.gather(*(start(p, i) for i, p in enumerate(players)))
    return players


def lateness(players):
    """Per sighting: seconds from the segment's end to its first listing."""
    out = []
    for p in players:
        ns = sorted(p.seen)[WINDOW:]  # the ones already listed at the start say nothing
        out += [p.seen[n] - (n + 1) * SEGMENT for n in ns]
    return sorted(out)


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def phase(app, origin_port, channel, players, seconds):
    """`players` through reelay and the yardstick's straight from the origin, at once."""
    start_counts = dict(COUNTS.playlists), dict(COUNTS.segments)
    t0 = time.time()
    cpu0 = run_cpu(app)

    async def both():
        via = crowd(app.port, [f"/api/v2/stream/proxy/twitch/{channel}?quality=720p"], players, seconds,
                    f"127.0.0.1:{origin_port}")
        direct = crowd(origin_port, [f"/live/{channel}/720p60/index.m3u8?direct=1"], YARDSTICK_PLAYERS, seconds, "")
        return await asyncio.gather(via, direct)

    (via, direct), peak = with_peak_rss(app, lambda: asyncio.run(both()))
    elapsed = time.time() - t0
    polls = COUNTS.playlists[(channel, "720p60", "reelay")] - start_counts[0].get((channel, "720p60", "reelay"), 0)
    segs = {k: v for k, v in COUNTS.segments.items() if k[0] == channel and k[3] == "reelay"}
    late_r, late_o = lateness(via), lateness(direct)
    return {
        "players": players,
        "polls_per_s": polls / elapsed,
        "fetches_per_segment": sum(segs.values()) / max(1, len(segs)),
        "added_p50_ms": (pct(late_r, 0.5) - pct(late_o, 0.5)) * 1000,
        "added_p99_ms": (pct(late_r, 0.99) - pct(late_o, 0.99)) * 1000,
        "late_r": (pct(late_r, 0.5), pct(late_r, 0.99)),
        "late_o": (pct(late_o, 0.5), pct(late_o, 0.99)),
        "stalls": sum(p.stalls for p in via),
        "stalls_origin": sum(p.stalls for p in direct),
        "backwards": sum(p.backwards for p in via),
        "leaks": sum(p.leaks for p in via),
        "playlists": sum(p.playlists for p in via),
        "errors": sum(p.errors for p in via),
        "cpu_s": run_cpu(app) - cpu0,
        "elapsed": elapsed,
        "peak_rss": peak,
    }


def with_peak_rss(app, work):
    """`work()`'s result, and reelay's peak RSS (MB) while it ran, read every 0.5 s."""
    peak = [0.0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], run.rss_mb(app.proc.pid))
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    try:
        return work(), peak[0]
    finally:
        stop.set()


def run_cpu(app):
    fields = Path(f"/proc/{app.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def many(app, channels, each, seconds):
    t0, cpu0 = time.time(), run_cpu(app)
    paths = [f"/api/v2/stream/proxy/twitch/many{c:03d}?quality=720p" for c in range(channels)]
    players, peak = with_peak_rss(app, lambda: asyncio.run(crowd(app.port, paths, each, seconds, "")))
    return {"cpu_s": run_cpu(app) - cpu0, "elapsed": time.time() - t0, "peak_rss": peak,
            "stalls": sum(p.stalls for p in players), "errors": sum(p.errors for p in players),
            "store_mb": app.prom("reelay_relay_store_bytes") / 1e6}


def ending(app):
    """An ended channel ('ending…' in the stand-in: its session is refused
    after 10 s and the next extraction says it is not live), watched by a
    player reloading every 0.1 s: seconds from the origin's first refusal
    to the first playlist ending with EXT-X-ENDLIST."""
    url = f"{app.base}/api/v2/stream/proxy/twitch/endingbench?quality=720p"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            status, body = run.get(url)
        except OSError as e:  # urllib's HTTPError: an error status
            raise SystemExit(f"bench: the ended channel answered {e}") from e
        if status == 200 and body.endswith(b"#EXT-X-ENDLIST\n"):
            return time.time() - REFUSED["endingbench"]
        time.sleep(0.1)
    raise SystemExit("bench: the ended channel never got EXT-X-ENDLIST")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    if not run.BIN.exists():
        raise SystemExit("bench: build the release binary first (cargo build --release)")
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = ThreadingHTTPServer(("127.0.0.1", 0), LiveOrigin)
    server.daemon_threads = True
    origin_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        app = run.Reelay(Path(tmp), f"http://127.0.0.1:{origin_port}")
        run.wait_http(app.base + "/health")
        idle_rss = run.rss_mb(app.proc.pid)
        results = []
        for i, n in enumerate((200, 1000)):
            r = phase(app, origin_port, f"crowd{i}", n, args.seconds)
            run.log(f"bench: {n} players: {r}")
            results.append(r)
        m = many(app, 50, 20, args.seconds)
        run.log(f"bench: 50 x 20: {m}")
        ended = ending(app)
        run.log(f"bench: ended channel: ENDLIST {ended:.2f} s after the origin's refusal")
        app.stop()
    rows = []
    for r in results:
        n = r["players"]
        rows += [
            (f"{n} players: origin playlist fetches per second (one variant)", f"{r['polls_per_s']:.2f}"),
            (f"{n} players: origin fetches per segment", f"{r['fetches_per_segment']:.2f}"),
            (f"{n} players: delay added behind the live edge, p50 / p99",
             f"{r['added_p50_ms']:.0f} / {r['added_p99_ms']:.0f} ms (listed {r['late_r'][0]:.2f} / {r['late_r'][1]:.2f} s "
             f"after a segment's end; the origin's own players {r['late_o'][0]:.2f} / {r['late_o'][1]:.2f} s)"),
            (f"{n} players: stalls, sequence going back, playlists naming the origin",
             f"{r['stalls']}, {r['backwards']}, {r['leaks']} (of {r['playlists']} playlists; origin's own players "
             f"{r['stalls_origin']} stalls; {r['errors']} errors)"),
            (f"{n} players: reelay CPU", f"{r['cpu_s'] / r['elapsed'] * 100:.0f}% of a core, peak RSS {r['peak_rss']:.0f} MB"),
        ]
    rows += [("an ended channel: origin's first refusal to EXT-X-ENDLIST (target duration 2 s)", f"{ended:.2f} s")]
    rows += [("50 channels x 20 players: reelay CPU, peak RSS",
              f"{m['cpu_s'] / m['elapsed'] * 100:.0f}% of a core, {m['peak_rss']:.0f} MB (idle {idle_rss:.0f} MB; "
              f"store {m['store_mb']:.1f} MB; {m['stalls']} stalls, {m['errors']} errors)")]
    report = (f"{args.seconds} s per phase; players reload every target duration (half after no change), start three "
              f"segments behind the edge and fetch every segment ({SEGMENT_BYTES // 1024} KiB); "
              f"{YARDSTICK_PLAYERS} of the same players watch the origin directly at the same time (the yardstick).\n\n"
              f"{run.figures(rows)}\n")
    print(report)
    if not args.no_write:
        run.write_section("live", report, "Live streams for crowds")


if __name__ == "__main__":
    main()
