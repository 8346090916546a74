// sendFile: the upload with its progress, the SDK's size check, cancel.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../dist/index.mjs';
import { makeAuth, newToken, record, withGateway } from './harness.mjs';

const env = withGateway();

test('sendFile reports progress up to 1 and resolves {url}; the file shows as new_event on both tabs', async (t) => {
  const token = newToken('file');
  const a = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  const b = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  t.after(() => { a.destroy(); b.destroy(); });
  const ra = record(a), rb = record(b);
  await ra.waitFor((n) => n === 'connected');
  await rb.waitFor((n) => n === 'connected');
  const chat = await a.startChat();

  const bytes = new Uint8Array(3 << 20).map((_, i) => i % 251);
  const file = new File([bytes], 'report.bin', { type: 'application/octet-stream' });
  const progress = [];
  const res = await a.sendFile(chat.id, { file, customId: 'f-1' }, { onProgress: (p) => progress.push(p) });
  assert.match(res.url, /^http:\/\/127\.0\.0\.1:\d+\/files\/.+\/report\.bin$/);
  assert.ok(progress.length >= 10, `only ${progress.length} progress reports`);
  assert.ok(progress.every((p, i) => p > 0 && p <= 1 && (i === 0 || p >= progress[i - 1])), JSON.stringify(progress));
  assert.equal(progress.at(-1), 1);
  // chat.io pushes the file event to every socket: the SDK emits it too.
  for (const r of [ra, rb]) {
    const [, d] = await r.waitFor((n, d) => n === 'new_event' && d.event.type === 'file', { what: 'the file event' });
    assert.equal(d.event.url, res.url);
    assert.equal(d.event.customId, 'f-1');
  }
});

test('sendFile: too big is INVALID_ARGS before any upload; cancel rejects CANCELLED', async (t) => {
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(newToken('file')) });
  t.after(() => sdk.destroy());
  const chat = await sdk.startChat();
  const big = new Blob([new Uint8Array((10 << 20) + 1)]);
  await assert.rejects(sdk.sendFile(chat.id, { file: big }), { code: 'INVALID_ARGS', reason: 'The file is too big (max size is 10.00 MB).' });
  const up = sdk.sendFile(chat.id, { file: new Blob([new Uint8Array(5 << 20)]) });
  up.cancel();
  await assert.rejects(up, { code: 'CANCELLED' });
});
