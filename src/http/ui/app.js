// reelay's page: look a video up, play it through the server, copy its links.
// Talks only to this server. Through the server it plays reelay's HLS
// manifest when the video has one (seeking and quality switching at every
// quality), else the proxy stream; hls.js (served from /ui/vendor) is loaded
// only for HLS, and only in browsers that have MediaSource.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORE = 'reelay.api_key';
let hls = null;

/** `youtube dQw4w9WgXcQ` / `youtube/dQw4w9WgXcQ` name a video by id; anything else is a link. */
function target(input) {
  const text = input.trim();
  const m = text.match(/^(youtube|bilibili|twitter|x|instagram|twitch)[\s/:]+([^\s/?#]+)$/i);
  if (m) return { path: `${m[1].toLowerCase()}/${encodeURIComponent(m[2])}` };
  return { url: text };
}

/** A path on this server for `kind` (videos, thumbnail, stream/proxy, stream/direct). */
function apiPath(kind, t, extra = {}) {
  const params = new URLSearchParams();
  if (t.url) params.set('url', t.url);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const key = $('api-key').value.trim();
  if (key) params.set('api_key', key);
  const query = params.toString();
  return `/api/v2/${kind}${t.path ? '/' + t.path : ''}${query ? '?' + query : ''}`;
}

/** Plain words for the API's errors. */
function explain(status, body, retryAfter) {
  const detail = body && body.detail ? body.detail : '';
  const error = body && body.error ? body.error : '';
  switch (true) {
    case status === 0:
      return ['Could not reach the reelay server.', 'Check your connection and try again.'];
    case status === 400:
      return ['This link is not supported.', detail || 'Paste a video link from YouTube, Bilibili, X, Instagram, Twitch or another video site.'];
    case status === 401:
      return ['This server needs an API key.', 'Open "API key" below the link and enter yours.'];
    case status === 403 && /key/i.test(error + detail):
      return ['That API key was not accepted.', detail];
    case status === 403:
      return ['This address is not allowed.', detail];
    case status === 404:
      return ['This video is unavailable.', detail || 'It may be private, removed, or not a video.'];
    case status === 409:
      return ['This video cannot be streamed that way.', detail];
    case status === 429:
      return ['Rate limited: too many requests.', `Try again in ${retryAfter || 'a few'} seconds.`];
    case status === 502:
      return ['The video site could not be read.', detail];
    case status === 503:
      return ['The server cannot look videos up right now.', detail];
    case status === 504:
      return ['The lookup took too long.', 'Try again in a moment.'];
    default:
      return [`Something went wrong (HTTP ${status}).`, detail];
  }
}

function showError([headline, detail]) {
  const box = $('error');
  box.replaceChildren();
  const strong = document.createElement('strong');
  strong.textContent = headline;
  box.append(strong);
  if (detail) {
    const p = document.createElement('span');
    p.textContent = detail;
    box.append(p);
  }
  box.hidden = false;
  setStatus('');
}

function setStatus(text) {
  $('status').textContent = text;
}

async function getJson(path) {
  let resp;
  try {
    resp = await fetch(path, { headers: { Accept: 'application/json' } });
  } catch {
    return { ok: false, status: 0 };
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  return { ok: resp.ok, status: resp.status, body, retryAfter: resp.headers.get('retry-after') };
}

const fmtDuration = (s) => {
  if (s == null) return null;
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
};
const fmtDate = (d) => (d && /^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d || null);
const fmtSize = (b) => (b == null ? '—' : b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);
const codec = (c) => (c && c !== 'none' ? c : null);

/** What yt-dlp's live_status means, in the page's words. */
const LIVE_STATUS = {
  is_live: 'Live now', is_upcoming: 'Upcoming live', was_live: 'Was live', post_live: 'Live just ended',
};

function renderInfo(t, video) {
  $('title').textContent = video.title || video.id || 'Untitled';
  const facts = [
    ['Uploader', video.uploader],
    ['Duration', fmtDuration(video.duration)],
    ['Views', video.view_count != null ? video.view_count.toLocaleString('en-US') : null],
    ['Uploaded', fmtDate(video.upload_date)],
    ['Platform', video.platform],
    ['Status', LIVE_STATUS[video.live_status] || (video.is_live ? 'Live now' : null)],
  ];
  const dl = $('facts');
  dl.replaceChildren();
  for (const [name, value] of facts) {
    if (value == null || value === '') continue;
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dl.append(dt, dd);
  }
  const img = $('thumb');
  img.hidden = !video.thumbnail;
  $('player').poster = video.thumbnail ? apiPath('thumbnail', t) : '';
  if (video.thumbnail) {
    img.onerror = () => { img.hidden = true; };
    img.src = apiPath('thumbnail', t);
  }
  const rows = (video.formats || []).map((f) => {
    const tr = document.createElement('tr');
    tr.dataset.formatId = f.format_id;
    const tracks = f.has_video && f.has_audio ? 'audio + video' : f.has_video ? 'video only' : f.has_audio ? 'audio only' : '—';
    const codecs = [codec(f.vcodec), codec(f.acodec)].filter(Boolean).join(', ') || f.codec || '—';
    for (const cell of [f.format_id, f.resolution || '—', f.fps ?? '—', codecs, tracks, fmtSize(f.filesize), f.protocol]) {
      const td = document.createElement('td');
      td.textContent = cell;
      tr.append(td);
    }
    return tr;
  });
  $('formats').tBodies[0].replaceChildren(...rows);
}

/** reelay's HLS manifest of the video. */
function manifestPath(t, quality) {
  const p = apiPath('stream/manifest', t, { quality });
  const [path, query] = p.split('?');
  return `${path}/master.m3u8${query ? '?' + query : ''}`;
}

function renderLinks(t, quality) {
  const abs = (p) => new URL(p, location.origin).href;
  $('proxy-link').textContent = abs(apiPath('stream/proxy', t, { quality }));
  $('direct-link').textContent = abs(apiPath('stream/direct', t, { quality }));
  $('manifest-link').textContent = abs(manifestPath(t, quality));
}

function loadHlsJs() {
  if (window.Hls) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = '/ui/vendor/hls.min.js';
    s.onload = resolve;
    s.onerror = () => reject(new Error('hls.js did not load'));
    document.head.append(s);
  });
}

function stopPlayer() {
  if (hls) {
    hls.destroy();
    hls = null;
  }
  const player = $('player');
  player.pause();
  player.removeAttribute('src');
  for (const track of player.querySelectorAll('track')) track.remove();
  player.load();
}

/** The video's subtitle tracks as <track>s (WebVTT through reelay), the
 * uploader's first; for players of a file (hls.js takes a manifest's own). */
function addCaptions(video) {
  const player = $('player');
  const tracks = [...(video.subtitles || [])].sort((a, b) => a.auto - b.auto);
  for (const s of tracks) {
    const track = document.createElement('track');
    track.kind = 'subtitles';
    track.srclang = s.lang;
    const name = s.name || s.lang;
    track.label = s.auto && !/auto/i.test(name) ? `${name} (auto)` : name;
    track.src = s.url;
    player.append(track);
  }
}

/** Chapters as a list; each starts playback at its start. */
function renderChapters(video) {
  const list = $('chapters');
  const chapters = video.chapters || [];
  list.hidden = chapters.length === 0;
  list.replaceChildren(...chapters.map((c) => {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'chapter';
    button.textContent = `${fmtDuration(c.start_time) || '0:00'} ${c.title}`;
    button.addEventListener('click', () => {
      const player = $('player');
      player.currentTime = c.start_time;
      player.play().catch(() => {});
    });
    li.append(button);
    return li;
  }));
}

/** Plays an HLS playlist: hls.js where MediaSource is (it seeks and switches
 * renditions with separate audio), else the browser's own HLS. */
async function playHls(src, preferNative) {
  const player = $('player');
  const native = player.canPlayType('application/vnd.apple.mpegurl');
  if (native && (preferNative || !window.MediaSource)) {
    player.src = src;
    player.play().catch(() => {});
    return;
  }
  try {
    await loadHlsJs();
  } catch (e) {
    return showError(['This stream needs HLS support.', e.message]);
  }
  hls = new window.Hls({ enableWorker: false });
  hls.on(window.Hls.Events.ERROR, (_, data) => {
    if (data.fatal) showError(['The stream stopped.', data.details || '']);
  });
  hls.loadSource(src);
  hls.attachMedia(player);
  player.play().catch(() => {});
}

async function play(t, quality, mode) {
  const player = $('player');
  const src = apiPath(`stream/${mode}`, t, { quality });
  player.dataset.source = mode;
  if (mode === 'proxy') {
    // Separate video and audio files: the manifest, so the player can seek.
    const manifest = manifestPath(t, quality);
    let m;
    try {
      m = await fetch(manifest);
    } catch {
      return showError(explain(0));
    }
    if (m.ok) {
      player.dataset.source = 'manifest';
      return playHls(manifest, false);
    }
    if (m.status !== 409) {
      const body = await m.json().catch(() => null);
      return showError(explain(m.status, body, m.headers.get('retry-after')));
    }
    player.dataset.source = 'proxy';
    // HLS streams come back as a playlist; everything else as media bytes.
    let head;
    try {
      head = await fetch(src, { method: 'HEAD' });
    } catch {
      return showError(explain(0));
    }
    if (!head.ok) return showError(explain(head.status, null, head.headers.get('retry-after')));
    if (/mpegurl/i.test(head.headers.get('content-type') || '')) return playHls(src, true);
  }
  player.src = src;
  player.play().catch(() => {});
}

/** Entries of a playlist, appended page by page; each plays when clicked. */
function renderPlaylist(t, page, append) {
  const list = $('pl-entries');
  if (!append) {
    $('pl-title').textContent = page.title || page.id || 'Playlist';
    const by = page.uploader ? ` by ${page.uploader}` : '';
    $('pl-meta').textContent = `${page.entry_count} videos${by}. Pick one to play it.`;
    list.replaceChildren();
  }
  for (const entry of page.entries) {
    const li = document.createElement('li');
    li.value = entry.index;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = entry.title || entry.id || entry.url;
    button.disabled = !entry.url;
    button.addEventListener('click', () => {
      for (const other of list.querySelectorAll('li.playing')) other.classList.remove('playing');
      li.classList.add('playing');
      $('link').value = entry.url;
      lookup(null, true);
    });
    li.append(button);
    const d = fmtDuration(entry.duration);
    if (d) {
      const span = document.createElement('span');
      span.className = 'duration';
      span.textContent = d;
      li.append(span);
    }
    list.append(li);
  }
  const more = $('pl-more');
  more.hidden = page.next_start == null;
  more.onclick = async () => {
    const res = await getJson(apiPath('playlists', t, { start: page.next_start, limit: 50 }));
    if (res.ok) renderPlaylist(t, res.body.data, true);
    else showError(explain(res.status, res.body, res.retryAfter));
  };
  $('playlist').hidden = false;
  setStatus('');
}

async function lookup(event, fromPlaylist = false) {
  if (event) event.preventDefault();
  const input = $('link').value;
  if (!input.trim()) return;
  const t = target(input);
  const quality = $('quality').value;
  const mode = document.querySelector('input[name=mode]:checked').value;
  $('error').hidden = true;
  $('result').hidden = true;
  if (!fromPlaylist) $('playlist').hidden = true;
  $('go').disabled = true;
  stopPlayer();
  setStatus('Looking the video up…');
  try {
    const res = await getJson(apiPath('videos', t));
    if (!res.ok) {
      // Not a video? It may be a playlist (or a page of several videos).
      if (t.url && !fromPlaylist && (res.status === 400 || res.status === 404)) {
        const list = await getJson(apiPath('playlists', t, { limit: 50 }));
        if (list.ok) return renderPlaylist(t, list.body.data, false);
      }
      return showError(explain(res.status, res.body, res.retryAfter));
    }
    const video = res.body.data;
    renderInfo(t, video);
    renderChapters(video);
    renderLinks(t, quality);
    $('result').hidden = false;
    setStatus('Loading the stream…');
    await play(t, quality, mode);
    if ($('player').dataset.source !== 'manifest') addCaptions(video);
  } finally {
    $('go').disabled = false;
  }
}

async function copy(button) {
  const text = $(button.dataset.target).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Plain-http pages on another host have no clipboard API.
    const area = document.createElement('textarea');
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  const label = button.textContent;
  button.textContent = 'Copied';
  setTimeout(() => { button.textContent = label; }, 1500);
}

document.addEventListener('DOMContentLoaded', () => {
  const key = $('api-key');
  key.value = localStorage.getItem(KEY_STORE) || '';
  key.addEventListener('change', () => localStorage.setItem(KEY_STORE, key.value.trim()));
  $('lookup').addEventListener('submit', lookup);
  for (const b of document.querySelectorAll('button.copy')) b.addEventListener('click', () => copy(b));
  const player = $('player');
  player.addEventListener('playing', () => setStatus('Playing.'));
  player.addEventListener('error', () => {
    if (!player.getAttribute('src') && !hls) return;
    const mode = document.querySelector('input[name=mode]:checked').value;
    showError(mode === 'direct'
      ? ['This browser cannot play the source directly.', 'Choose "through reelay" and look it up again.']
      : ['This browser cannot play this stream.', 'Try another quality, or copy a link into your player.']);
  });
  // /ui?url=… looks a link up at once (handy for sharing).
  const shared = new URLSearchParams(location.search).get('url');
  if (shared) {
    $('link').value = shared;
    lookup();
  }
});
