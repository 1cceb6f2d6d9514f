# reelay's persistent extractor: imports yt_dlp once, then answers one JSON
# request per line on stdin with one JSON line on stdout:
#   {"url": "...", "flat": false, "cookies": null, "proxy": null,
#    "source_address": null}
#                   ->  {"ok": true, "info": <what `yt-dlp -J` prints>}
#                   or  {"ok": false, "error": "ERROR: ..."}
#   {"version": true} -> {"ok": true, "version": "..."}
#   {"debug_header": true} -> {"ok": true, "debug": "[debug] ...\n..."}
# One extraction at a time; reelay runs several workers for concurrency.
import json
import os
import sys

# Protocol lines go to the real stdout; anything else printed goes to stderr.
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import yt_dlp  # noqa: E402


class Quiet:
    def debug(self, msg):
        pass

    def info(self, msg):
        pass

    def warning(self, msg):
        pass

    def error(self, msg):
        pass


class Collect(Quiet):
    """Keeps the debug lines: yt-dlp's verbose header names its JS runtime
    and optional libraries, which reelay reads as in the process mode."""

    def __init__(self):
        self.lines = []

    def debug(self, msg):
        self.lines.append(msg)


OPTIONS = {
    "quiet": True,
    "no_warnings": True,
    "noplaylist": True,
    "skip_download": True,
    "logger": Quiet(),
}


def answer(obj):
    out.write(json.dumps(obj) + "\n")


def extra_options():
    """YTDLP_ARGS (a JSON list from reelay) as YoutubeDL options, read by
    yt-dlp's own parser: only what they change from the defaults."""
    import contextlib
    import io

    args = json.loads(os.environ.get("REELAY_YTDLP_ARGS") or "[]")
    if not args:
        return {}, None
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            base = yt_dlp.parse_options([]).ydl_opts
            parsed = yt_dlp.parse_options(args)
    except BaseException as e:  # optparse exits on a bad option
        lines = [line.strip() for line in (said.getvalue() + "\n" + str(e)).splitlines() if line.strip()]
        line = next((line for line in lines if "error:" in line), lines[-1] if lines else "no reason given")
        return {}, "YTDLP_ARGS: yt-dlp rejects them: " + line
    if parsed.urls:
        return {}, "YTDLP_ARGS: options only, no URLs: " + " ".join(parsed.urls)
    return {k: v for k, v in parsed.ydl_opts.items() if base.get(k) != v}, None


EXTRA, REJECTED = extra_options()


for line in sys.stdin:
    if REJECTED:
        answer({"ok": False, "error": "ERROR: " + REJECTED})
        continue
    try:
        req = json.loads(line)
        if req.get("version"):
            answer({"ok": True, "version": yt_dlp.version.__version__})
            continue
        if req.get("debug_header"):  # what `yt-dlp -v` prints first
            collect = Collect()
            yt_dlp.YoutubeDL({**EXTRA, **OPTIONS, "verbose": True, "logger": collect}).close()
            answer({"ok": True, "debug": "\n".join(collect.lines)})
            continue
        options = {**EXTRA, **OPTIONS}
        if req.get("flat"):  # --flat-playlist
            options.update(noplaylist=False, extract_flat="in_playlist")
        if req.get("cookies"):  # --cookies: a private copy reelay deletes afterwards
            options["cookiefile"] = req["cookies"]
        if req.get("proxy"):  # --proxy: the egress proxy this extraction uses
            options["proxy"] = req["proxy"]
        if req.get("source_address"):  # --source-address
            options["source_address"] = req["source_address"]
        ydl = yt_dlp.YoutubeDL(options)
        try:
            info = ydl.sanitize_info(ydl.extract_info(req["url"], download=False))
        finally:
            # Writes the cookie jar back (to reelay's private copy) before the
            # answer, so that reelay never deletes the copy while it is written.
            try:
                ydl.close()
            except Exception:
                pass
        answer({"ok": True, "info": info})
    except Exception as e:  # every failure is an answer, never a dead worker
        text = str(e)
        answer({"ok": False, "error": text if text.startswith("ERROR:") else "ERROR: " + text})
