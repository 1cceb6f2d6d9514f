// The status page: reads /api/v2/system/status every few seconds and draws
// it. Everything from the server is written as text (titles come from the
// platforms), never as HTML.
"use strict";

const key = new URLSearchParams(location.search).get("admin_key");
const source = "/api/v2/system/status" + (key ? "?admin_key=" + encodeURIComponent(key) : "");
const $ = (id) => document.getElementById(id);

function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}
const rate = (n) => bytes(n) + "/s";
const num = (n, d = 1) => (n == null ? "–" : Number(n).toFixed(d));
const pct = (x) => (x == null ? "–" : Math.round(x * 100) + " %");

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function rows(tbody, list, cells) {
  tbody.replaceChildren(...list.map((item) => {
    const tr = el("tr");
    for (const c of cells(item)) tr.append(c instanceof Node ? c : el("td", c));
    return tr;
  }));
}

function pairs(dl, list) {
  dl.replaceChildren();
  for (const [name, value, cls] of list) {
    dl.append(el("dt", name));
    const dd = el("dd", null, cls);
    if (value instanceof Node) dd.append(value); else dd.textContent = String(value);
    dl.append(dd);
  }
}

function bar(used, budget) {
  const wrap = el("span");
  wrap.append(el("span", bytes(used) + " of " + bytes(budget)));
  const b = el("div", null, "bar");
  const fill = el("span");
  fill.style.width = Math.min(100, budget ? (used / budget) * 100 : 0).toFixed(1) + "%";
  b.append(fill);
  wrap.append(b);
  return wrap;
}

// A line chart of `series` (arrays of numbers) over the same times.
function chart(canvas, times, series) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 18;
  ctx.clearRect(0, 0, w, h);
  const colors = ["#2f6fdb", "#d9822b"];
  const max = Math.max(1, ...series.flat());
  ctx.strokeStyle = "rgba(127,127,127,.35)";
  ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(pad, h - pad); ctx.lineTo(w - 4, h - pad); ctx.stroke();
  ctx.fillStyle = "rgba(127,127,127,.9)";
  ctx.font = "10px system-ui";
  ctx.fillText(max >= 1000 ? bytes(max).replace(" ", "") : num(max, max < 10 ? 1 : 0), 2, 10);
  if (times.length < 2) return;
  const t0 = times[0], t1 = times[times.length - 1] || t0 + 1;
  series.forEach((values, i) => {
    ctx.strokeStyle = colors[i % colors.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, j) => {
      const x = pad + ((times[j] - t0) / Math.max(1, t1 - t0)) * (w - pad - 4);
      const y = h - pad - (v / max) * (h - pad - 14);
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  });
}

function render(s) {
  const up = s.uptime_secs;
  $("meta").textContent = `version ${s.version} · up ${Math.floor(up / 3600)}h${Math.floor((up % 3600) / 60)}m · ` +
    `updated ${new Date(s.generated_at * 1000).toLocaleTimeString()} · sampled every ${s.sample_every_secs} s`;
  const t = s.totals;
  $("n-out").textContent = rate(t.out_bps);
  $("n-origin").textContent = rate(t.origin_bps);
  $("n-requests").textContent = num(t.requests_ps) + "/s";
  $("n-errors").textContent = num(t.errors_ps, 2) + "/s";
  $("n-errors").className = "value" + (t.errors_ps > 0 ? " bad" : "");
  $("n-streams").textContent = t.active_streams;
  $("n-live").textContent = t.live_viewers;

  const h = s.history;
  const times = h.map((p) => p.t);
  chart($("c-bytes"), times, [h.map((p) => p.out_bps), h.map((p) => p.origin_bps)]);
  chart($("c-requests"), times, [h.map((p) => p.requests_ps), h.map((p) => p.errors_ps)]);
  chart($("c-extractions"), times, [h.map((p) => p.extractions_pm)]);
  chart($("c-store"), times, [h.map((p) => p.store_bytes)]);

  rows($("streams").tBodies[0], s.streams, (r) => [
    r.title || "(title not cached)", r.platform, r.live ? "live" : "", r.viewers,
    rate(r.out_bps), rate(r.origin_bps), pct(r.store_share),
  ]);
  $("no-streams").hidden = s.streams.length > 0;

  const st = s.store;
  pairs($("store"), [
    ["memory", bar(st.memory_bytes, st.memory_budget)],
    ["disk", st.disk_budget == null ? "no disk tier" : bar(st.disk_bytes, st.disk_budget)],
    ["evictions", `${st.evictions_memory} memory, ${st.evictions_disk} disk`],
    ["disk errors", st.disk_errors, st.disk_errors > 0 ? "bad" : ""],
    ["damaged blocks", st.disk_corrupt_blocks, st.disk_corrupt_blocks > 0 ? "bad" : ""],
    ["served from the store", pct(st.served_from_store_share)],
  ]);

  const ex = s.extractions;
  pairs($("extractions"), [
    ["per minute", num(ex.per_minute)],
    ["in flight", ex.in_flight],
    ["proxies", ex.proxies === 0 ? "none (direct)" : `${ex.proxies}, ${ex.cooling.length} cooling down`,
      ex.proxies > 0 && ex.cooling.length === ex.proxies ? "bad" : ""],
  ]);
  rows($("outcomes").tBodies[0], ex.outcomes, ([o, n]) => [o, n]);
  rows($("egress").tBodies[0], ex.egress_refusals, (r) => [r.egress, r.reason, r.count]);
  $("egress").hidden = ex.egress_refusals.length === 0;

  const y = s.ytdlp;
  pairs($("deps"), [
    ["yt-dlp", y.state, y.state === "available" ? "" : "bad"],
    ["version", y.version || "–"],
    ["JavaScript runtime", y.js_runtime || "none (YouTube formats may be missing)", y.js_runtime ? "" : "bad"],
    ["last update", y.last_update || "–"],
    ["last check", y.last_check ? `${y.last_check} (${y.last_outcome})` : "updates off"],
    ["Redis", s.redis, s.redis.startsWith("unhealthy") ? "bad" : ""],
  ]);
}

async function refresh() {
  try {
    const r = await fetch(source, { cache: "no-store" });
    if (!r.ok) throw new Error((await r.json()).detail || r.status);
    render(await r.json());
  } catch (e) {
    $("meta").textContent = "cannot read the status: " + e.message;
  }
}

refresh();
setInterval(refresh, 3000);
