// googlevideo's SabrStream (LuanRT's SABR client, from npm) against a SABR
// server: downloads one video and one audio format and writes each as one
// file, so a test compares them with what the server serves.
//
//   node sabr.mjs <streaming URL> <video itag> <audio itag> <out dir> [po token]
//
// Prints one JSON line: the bytes written per format, or the error.
import { writeFile } from 'node:fs/promises';
import { SabrStream } from 'googlevideo/sabr-stream';

const [url, videoItag, audioItag, out, poToken] = process.argv.slice(2);
const format = (itag, mimeType, extra) => ({
  itag: Number(itag), lastModified: '1700000000000000', mimeType, approxDurationMs: 8000, ...extra,
});
const formats = [
  format(videoItag, 'video/mp4; codecs="avc1.4d401e"', { bitrate: 1000000, width: 640, height: 360 }),
  format(audioItag, 'audio/mp4; codecs="mp4a.40.2"', { bitrate: 128000 }),
];
const stream = new SabrStream({
  serverAbrStreamingUrl: url,
  videoPlaybackUstreamerConfig: 'AAAA',
  clientInfo: { clientName: 1, clientVersion: '2.20261201.00.00' },
  poToken,
  formats,
});
const collect = async (s) => {
  const chunks = [];
  for await (const c of s) chunks.push(c);
  return Buffer.concat(chunks);
};
try {
  const { videoStream, audioStream } = await stream.start({ videoFormat: Number(videoItag), audioFormat: Number(audioItag) });
  const [video, audio] = await Promise.all([collect(videoStream), collect(audioStream)]);
  await writeFile(`${out}/video`, video);
  await writeFile(`${out}/audio`, audio);
  console.log(JSON.stringify({ video: video.length, audio: audio.length }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e && e.message || e) }));
  process.exitCode = 1;
}
