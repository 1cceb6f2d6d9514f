// Drives Debian's chromium, headless, against a running reelay and prints
// what a person would see as one JSON report; tests/api/ui.rs asserts on it.
//
//   node ui.mjs '{"base": "http://127.0.0.1:PORT", "video": LINK, "hls": LINK,
//                 "playlist": LINK, "bad": LINK, "gone": LINK, "artifacts": DIR,
//                 "real_base": URL of a reelay with the real yt-dlp, "real_video": LINK,
//                 "limited_base": URL of a reelay with a rate limit of one request,
//                 "dash": LINK of a video with separate DASH video and audio,
//                 "live": LINK of a live channel whose session the origin cuts after 10 s,
//                 "subs": LINK of a video with dubbed audio, subtitles and chapters,
//                 "muxed": PATH of a muxed HLS master}'
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const report = { outside_requests: [], console_errors: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--autoplay-policy=no-user-gesture-required',
  ],
});

async function newPage(viewport, base = cfg.base) {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  const own = new URL(base).host;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['data:', 'blob:'].includes(u.protocol) && u.host !== own) report.outside_requests.push(r.url());
  });
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  return page;
}

/** Pastes `link`, submits, and waits for formats or an error. */
async function lookUp(page, link, quality = 'best') {
  await page.fill('#link', link);
  await page.selectOption('#quality', quality);
  await page.click('#go');
  await page.waitForFunction(
    () => document.querySelectorAll('#formats tbody tr').length > 0 && !document.querySelector('#result').hidden
      || !document.querySelector('#error').hidden,
    null, { timeout: 30000 });
}

/** readyState once it reaches 2, and how far playback moves in a while. */
async function playback(page) {
  try {
    await page.waitForFunction(() => document.querySelector('#player').readyState >= 2, null, { timeout: 30000 });
  } catch (e) {
    return { ready_state: await page.evaluate(() => document.querySelector('#player').readyState), error: String(e) };
  }
  const t0 = await page.evaluate(() => document.querySelector('#player').currentTime);
  let advanced = false;
  try {
    await page.waitForFunction((t) => document.querySelector('#player').currentTime > t + 0.5, t0, { timeout: 15000 });
    advanced = true;
  } catch { /* reported below */ }
  return page.evaluate(([t0, advanced]) => {
    const v = document.querySelector('#player');
    return { ready_state: v.readyState, start_time: t0, current_time: v.currentTime, advanced,
             width: v.videoWidth, height: v.videoHeight, used_hls_js: !!window.Hls };
  }, [t0, advanced]);
}

const pageState = (page) => page.evaluate(() => ({
  url: location.href,
  title: document.querySelector('#title').textContent,
  facts: Object.fromEntries([...document.querySelectorAll('#facts dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
  format_rows: [...document.querySelectorAll('#formats tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent)),
  thumbnail_width: document.querySelector('#thumb').hidden ? 0 : document.querySelector('#thumb').naturalWidth,
  proxy_link: document.querySelector('#proxy-link').textContent,
  direct_link: document.querySelector('#direct-link').textContent,
  manifest_link: document.querySelector('#manifest-link').textContent,
  source: document.querySelector('#player').dataset.source,
  error: document.querySelector('#error').hidden ? null : document.querySelector('#error').innerText,
  status: document.querySelector('#status').textContent,
}));

try {
  const page = await newPage({ width: 1280, height: 900 });
  // A browser opening the root lands on the page.
  await page.goto(cfg.base + '/');
  report.landing_url = page.url();

  await lookUp(page, cfg.video, '360p');
  report.video = { ...(await pageState(page)), playback: await playback(page) };
  await page.waitForFunction(() => document.querySelector('#thumb').complete, null, { timeout: 10000 }).catch(() => {});
  report.video.thumbnail_width = (await pageState(page)).thumbnail_width;
  await page.click('button.copy[data-target=proxy-link]');
  await page.waitForFunction(() => document.querySelector('button.copy[data-target=proxy-link]').textContent === 'Copied');
  report.video.clipboard = await page.evaluate(() => navigator.clipboard.readText());
  await page.screenshot({ path: `${cfg.artifacts}/ui-video.png`, fullPage: true });

  await lookUp(page, cfg.hls, 'best');
  report.hls = { ...(await pageState(page)), playback: await playback(page) };
  await page.screenshot({ path: `${cfg.artifacts}/ui-hls.png`, fullPage: true });

  // A browser without native HLS (Firefox, older Chrome): the page brings hls.js.
  const noHls = await newPage({ width: 1280, height: 900 });
  await noHls.addInitScript(() => {
    const native = HTMLMediaElement.prototype.canPlayType;
    HTMLMediaElement.prototype.canPlayType = function (type) {
      return /mpegurl/i.test(type) ? '' : native.call(this, type);
    };
  });
  await noHls.goto(cfg.base + '/ui');
  await lookUp(noHls, cfg.hls, 'best');
  report.hls_js = { ...(await pageState(noHls)), playback: await playback(noHls) };

  // Separate DASH video and audio: played through reelay's manifest with
  // hls.js, which must seek into the middle and keep the sound.
  if (cfg.dash) {
    await lookUp(page, cfg.dash, 'best');
    const before = await playback(page);
    const state = await pageState(page); // after play() has chosen its source
    const seeked = await page.evaluate(() => new Promise((resolve) => {
      const v = document.querySelector('#player');
      const timer = setTimeout(() => resolve({ seeked: false, at: v.currentTime }), 15000);
      v.addEventListener('seeked', () => { clearTimeout(timer); resolve({ seeked: true, at: v.currentTime }); }, { once: true });
      v.currentTime = 5;
    }));
    const advanced = await page.waitForFunction(() => document.querySelector('#player').currentTime > 5.4, null,
      { timeout: 15000 }).then(() => true, () => false);
    report.dash = {
      ...state,
      playback: before,
      seek: seeked,
      advanced_after_seek: advanced,
      ...(await page.evaluate(() => {
        const v = document.querySelector('#player');
        // `hls` is the page's own (a top-level binding of app.js).
        return { levels: hls ? hls.levels.length : 0, audio_tracks: hls ? hls.audioTracks.length : 0,
                 audio_bytes: v.webkitAudioDecodedByteCount || 0, current_time: v.currentTime };
      })),
    };
    await page.screenshot({ path: `${cfg.artifacts}/ui-manifest.png`, fullPage: true });
  }

  // A video with dubs, subtitles and chapters: hls.js on reelay's manifest
  // lists every language, switches the audio, and shows a subtitle cue; the
  // page lists the chapters.
  if (cfg.subs) {
    await lookUp(noHls, cfg.subs, 'best');
    const before = await playback(noHls);
    const state = await pageState(noHls);
    const media = await noHls.evaluate(() => new Promise((resolve) => {
      const v = document.querySelector('#player');
      const out = { audio_tracks: hls.audioTracks.map((t) => t.lang), subtitle_tracks: hls.subtitleTracks.map((t) => t.lang) };
      const timer = setTimeout(() => resolve({ ...out, switched: false, cue: null }), 15000);
      hls.on(window.Hls.Events.AUDIO_TRACK_SWITCHED, (_, d) => { out.switched_to = hls.audioTracks[d.id].lang; });
      hls.audioTrack = 1;
      hls.subtitleDisplay = true;
      hls.subtitleTrack = hls.subtitleTracks.findIndex((t) => t.lang === 'en');
      const poll = setInterval(() => {
        const cues = [...v.textTracks].flatMap((t) => [...(t.cues || [])].map((c) => c.text));
        if (cues.length && out.switched_to) {
          clearInterval(poll); clearTimeout(timer);
          resolve({ ...out, switched: true, cue: cues[0] });
        }
      }, 200);
    }));
    report.subs = {
      ...state, playback: before, ...media,
      chapters: await noHls.evaluate(() => [...document.querySelectorAll('#chapters li')].map((li) => li.textContent)),
    };
    await noHls.screenshot({ path: `${cfg.artifacts}/ui-subtitles.png`, fullPage: true });
  }

  // Muxed HLS (what AVPro gets): hls.js plays it with sound, and seeks.
  if (cfg.muxed) {
    await noHls.evaluate((src) => { stopPlayer(); playHls(src, false); }, cfg.muxed);
    const before = await playback(noHls);
    const seeked = await noHls.evaluate(() => new Promise((resolve) => {
      const v = document.querySelector('#player');
      const timer = setTimeout(() => resolve(false), 15000);
      v.addEventListener('seeked', () => { clearTimeout(timer); resolve(true); }, { once: true });
      v.currentTime = 6.2;
    }));
    const advanced = await noHls.waitForFunction(() => document.querySelector('#player').currentTime > 6.6, null,
      { timeout: 15000 }).then(() => true, () => false);
    report.muxed = {
      playback: before, seeked, advanced_after_seek: advanced,
      ...(await noHls.evaluate(() => ({
        levels: hls ? hls.levels.length : 0, audio_tracks: hls ? hls.audioTracks.length : 0,
        audio_bytes: document.querySelector('#player').webkitAudioDecodedByteCount || 0,
      }))),
    };
  }

  // A live channel: reelay's live master, played with hls.js, on across
  // the origin refusing the session (it is renewed after about 10 s).
  if (cfg.live) {
    await lookUp(noHls, cfg.live, 'best');
    const start = await playback(noHls);
    const t0 = await noHls.evaluate(() => document.querySelector('#player').currentTime);
    await noHls.waitForTimeout(18000);
    report.live = {
      ...(await pageState(noHls)),
      playback: start,
      played: (await noHls.evaluate(() => document.querySelector('#player').currentTime)) - t0,
    };
    await noHls.screenshot({ path: `${cfg.artifacts}/ui-live.png`, fullPage: true });
  }

  // A playlist link lists its videos; picking one plays it.
  await page.fill('#link', cfg.playlist);
  await page.click('#go');
  await page.waitForFunction(() => document.querySelectorAll('#pl-entries li').length > 0
    || !document.querySelector('#error').hidden, null, { timeout: 30000 });
  report.playlist = await page.evaluate(() => ({
    title: document.querySelector('#pl-title').textContent,
    meta: document.querySelector('#pl-meta').textContent,
    entries: [...document.querySelectorAll('#pl-entries li button')].map((b) => b.textContent),
    error: document.querySelector('#error').hidden ? null : document.querySelector('#error').innerText,
  }));
  if (report.playlist.entries.length) {
    await page.click('#pl-entries li:nth-child(2) button');
    await page.waitForFunction(() => !document.querySelector('#result').hidden
      || !document.querySelector('#error').hidden, null, { timeout: 30000 });
    report.playlist.picked = { ...(await pageState(page)), playback: await playback(page) };
    report.playlist.still_listed = await page.evaluate(() => !document.querySelector('#playlist').hidden);
    await page.screenshot({ path: `${cfg.artifacts}/ui-playlist.png`, fullPage: true });
  }

  await lookUp(page, cfg.bad);
  report.bad = await pageState(page);
  await lookUp(page, cfg.gone);
  report.gone = await pageState(page);
  await page.screenshot({ path: `${cfg.artifacts}/ui-error.png`, fullPage: true });

  // A second server running the real yt-dlp, on a local page with a <video>.
  if (cfg.real_base) {
    const real = await newPage({ width: 1280, height: 900 }, cfg.real_base);
    await real.goto(cfg.real_base + '/ui');
    await lookUp(real, cfg.real_video, 'best');
    report.real = { ...(await pageState(real)), playback: await playback(real) };
  }

  // A server with a tight rate limit: the second lookup is refused, in plain words.
  if (cfg.limited_base) {
    const limited = await newPage({ width: 1280, height: 900 }, cfg.limited_base);
    await limited.goto(cfg.limited_base + '/ui');
    await lookUp(limited, cfg.video, '360p');
    await lookUp(limited, cfg.video, '360p');
    report.limited = await pageState(limited);
  }

  // A phone-width screen: the same lookup, nothing wider than the screen.
  const phone = await newPage({ width: 390, height: 844 });
  await phone.goto(cfg.base + '/ui');
  await lookUp(phone, cfg.video, 'best');
  report.phone = {
    ...(await pageState(phone)),
    playback: await playback(phone),
    page_width: await phone.evaluate(() => document.documentElement.scrollWidth),
    screen_width: 390,
  };
  await phone.screenshot({ path: `${cfg.artifacts}/ui-phone.png`, fullPage: true });
} catch (e) {
  report.failure = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
