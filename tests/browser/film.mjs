// Plays a merged film in Debian's chromium, headless, as a <video> given
// its link: the duration it reads, a seek far into it, playback from
// there. Prints one JSON report; tests/api/compose.rs asserts on it.
//
//   node film.mjs '{"url": "http://127.0.0.1:PORT/api/v2/stream/proxy/youtube/ID?quality=720p", "seek": 5400}'
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
         '--autoplay-policy=no-user-gesture-required'],
});
let report = {};
try {
  const page = await (await browser.newContext()).newPage();
  await page.setContent('<video id="v" muted preload="metadata"></video>');
  report = await page.evaluate(async ([url, seek]) => {
    const v = document.getElementById('v');
    const once = (name, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
      v.addEventListener(name, () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    v.src = url;
    await once('loadedmetadata', 30000);
    const duration = v.duration;
    v.currentTime = seek;
    await once('seeked', 30000);
    const seeked_to = v.currentTime;
    await v.play();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    return { duration, seeked_to, playing_at: v.currentTime, width: v.videoWidth, error: v.error && v.error.message };
  }, [cfg.url, cfg.seek]);
} catch (e) {
  report.failure = String(e);
}
console.log(JSON.stringify(report));
await browser.close();
