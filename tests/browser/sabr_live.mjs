// googlevideo's SabrStream following a live stream of the tests' stand-in
// SABR server (`tests/api/sabr_live.rs`) for a few seconds:
//
//   node sabr_live.mjs <streaming URL> <video itag> <audio itag> <out dir> [seconds=8]
//
// googlevideo has no live support of its own: it reads no LIVE_METADATA
// (UMP part 31), and the player time it sends is what it has downloaded of
// the main format, from 0. So this script does the one thing a live player
// adds, in SabrStream's `fetch` option: from the first LIVE_METADATA on,
// the head's time is added to each request's player time. The rest
// (requests, backoff, cookie, buffered ranges, media parts, init sections)
// is googlevideo's own. It stops by SabrStream's own loop condition
// (`durationMs`: a live layout has no duration), a hard timeout aborting.
//
// Writes <out>/video and <out>/audio and prints one JSON line: bytes
// written, the first LIVE_METADATA, the sequence numbers kept per track,
// whether each init section was kept, each file's `tfdt`s (ms), the
// requests' player times, MEDIA_HEADERs without an itag, `error` if any.
import { writeFile } from 'node:fs/promises';
import { SabrStream } from 'googlevideo/sabr-stream';
import { LiveMetadata, MediaHeader, VideoPlaybackAbrRequest, UMPPartId } from 'googlevideo/protos';
import { UmpReader, CompositeBuffer } from 'googlevideo/ump';

const [url, videoItag, audioItag, out, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 8);
const format = (itag, mimeType, extra) => ({
  itag: Number(itag), lastModified: '1700000000000000', mimeType, ...extra,
});
const formats = [
  format(videoItag, 'video/mp4; codecs="avc1.4d401e"', { bitrate: 1000000, width: 640, height: 360 }),
  format(audioItag, 'audio/mp4; codecs="mp4a.40.2"', { bitrate: 128000 }),
];

const seen = { live: undefined, offsetMs: undefined, playerTimes: [], headersWithoutItag: 0 };

/** The UMP parts of a whole answer. */
function parts(bytes) {
  const found = [];
  new UmpReader(new CompositeBuffer([bytes])).read((p) => {
    const chunks = p.data.chunks;
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    found.push({ type: p.type, data });
  });
  return found;
}

/** fetch, with the live start googlevideo lacks. */
async function liveFetch(input, init) {
  if (init?.body && seen.offsetMs !== undefined) {
    const req = VideoPlaybackAbrRequest.decode(init.body);
    const t = Number(req.clientAbrState?.playerTimeMs || 0) + seen.offsetMs;
    req.clientAbrState = { ...req.clientAbrState, playerTimeMs: String(t) };
    init = { ...init, body: VideoPlaybackAbrRequest.encode(req).finish() };
  }
  if (init?.body) {
    const req = VideoPlaybackAbrRequest.decode(init.body);
    seen.playerTimes.push(Number(req.clientAbrState?.playerTimeMs || 0));
  }
  const resp = await fetch(input, init);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  if (resp.ok && bytes.length) {
    for (const p of parts(bytes)) {
      if (p.type === UMPPartId.LIVE_METADATA) {
        const m = LiveMetadata.decode(p.data);
        const ms = (ticks, scale) => Math.round(Number(ticks || 0) * 1000 / (scale || 1000));
        const live = {
          headSequenceNumber: Number(m.headSequenceNumber || 0),
          headTimeMs: Number(m.headTimeMs || 0),
          minSeekableMs: ms(m.minSeekableTimeTicks, m.minSeekableTimescale),
          maxSeekableMs: ms(m.maxSeekableTimeTicks, m.maxSeekableTimescale),
          wallTimeMs: m.wallTimeMs,
        };
        seen.live ??= live;
        seen.offsetMs ??= live.headTimeMs;
      } else if (p.type === UMPPartId.MEDIA_HEADER) {
        const h = MediaHeader.decode(p.data);
        if (!h.itag) seen.headersWithoutItag += 1;
      }
    }
  }
  return new Response(bytes, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
}

/** Each `tfdt`'s time in ms (`mdhd`'s timescale), in file order. */
function tfdts(buf) {
  const times = [];
  let scale = 1000;
  const walk = (from, to) => {
    for (let at = from; at + 8 <= to;) {
      const size = buf.readUInt32BE(at);
      const type = buf.toString('latin1', at + 4, at + 8);
      if (size < 8) break;
      if (['moov', 'trak', 'mdia', 'moof', 'traf'].includes(type)) walk(at + 8, at + size);
      if (type === 'mdhd') scale = buf.readUInt32BE(at + (buf[at + 8] === 1 ? 28 : 20));
      if (type === 'tfdt') {
        const t = buf[at + 8] === 1 ? Number(buf.readBigUInt64BE(at + 12)) : buf.readUInt32BE(at + 12);
        times.push(Math.round(t * 1000 / scale));
      }
      at += size;
    }
  };
  walk(0, buf.length);
  return times;
}

const initialized = {};
const stream = new SabrStream({
  serverAbrStreamingUrl: url,
  videoPlaybackUstreamerConfig: 'AAAA',
  clientInfo: { clientName: 1, clientVersion: '2.20261201.00.00' },
  formats,
  durationMs: seconds * 1000,
  fetch: liveFetch,
});
// The InitializedFormat objects outlive `resetState` (it clears the map,
// not them), so what was kept can be read after the end.
stream.on('formatInitialization', (f) => {
  initialized[f.formatInitializationMetadata.mimeType?.includes('video') ? 'video' : 'audio'] = f;
});
const collect = async (s, chunks) => {
  for await (const c of s) chunks.push(c);
};
const began = Date.now();
const got = { video: [], audio: [] };
const guard = setTimeout(() => stream.abort(), seconds * 1000 + 20000);
const report = (extra) => {
  const kept = (k) => [...(initialized[k]?.downloadedSegments.keys() ?? [])].sort((a, b) => a - b);
  const video = Buffer.concat(got.video), audio = Buffer.concat(got.audio);
  return JSON.stringify({
    video: video.length, audio: audio.length, ...seen,
    segments: { video: kept('video').filter((n) => n > 0), audio: kept('audio').filter((n) => n > 0) },
    init: { video: kept('video').includes(0), audio: kept('audio').includes(0) },
    tfdt: { video: tfdts(video), audio: tfdts(audio) },
    elapsedMs: Date.now() - began, ...extra,
  });
};
try {
  const { videoStream, audioStream } = await stream.start({ videoFormat: Number(videoItag), audioFormat: Number(audioItag), stallDetectionMs: 10000 });
  await Promise.all([collect(videoStream, got.video), collect(audioStream, got.audio)]);
  clearTimeout(guard);
  await writeFile(`${out}/video`, Buffer.concat(got.video));
  await writeFile(`${out}/audio`, Buffer.concat(got.audio));
  console.log(report({}));
} catch (e) {
  clearTimeout(guard);
  console.log(report({ error: String(e && e.message || e) }));
  process.exitCode = 1;
}
