// The stream: refresh after a 401, a refused call, and resuming after the
// gateway cut the stream (it restarts on its data dir) without losing or
// repeating an event.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../dist/index.mjs';
import { customerIdOf, isNewEvent, makeAuth, newToken, record, withGateway } from './harness.mjs';

const env = withGateway();

test('a 401 on the stream: getFreshToken once, then connected', async (t) => {
  const fresh = newToken('fresh');
  const auth = makeAuth('expired:' + fresh, fresh); // the simulator refuses expired:… tokens
  const errors = [];
  const sdk = init({ gatewayUrl: env.gw.url, auth, onError: (e) => errors.push(e) });
  t.after(() => sdk.destroy());
  const rec = record(sdk);
  const [, summary] = await rec.waitFor((n) => n === 'connected', { what: 'connected' });
  assert.deepEqual(summary, { chatsSummary: [], totalChats: 0 });
  assert.equal(auth.calls.getFreshToken, 1);
  assert.deepEqual(rec.events[0], ['customer_id', customerIdOf(fresh)]);
  assert.deepEqual(errors, []);
  const chat = await sdk.startChat();
  assert.ok(chat.id);
});

test('a token refused twice: the stream gives up (onError); a call answered AUTHENTICATION is rejected, not retried', async (t) => {
  const auth = makeAuth('expired:' + newToken()); // getFreshToken gives the same refused token
  let failed;
  const gaveUp = new Promise((ok) => { failed = ok; });
  const sdk = init({ gatewayUrl: env.gw.url, auth, onError: failed });
  t.after(() => sdk.destroy());
  const err = await gaveUp;
  assert.equal(err.code, 'AUTHENTICATION');
  assert.equal(err.status, 401);
  assert.equal(auth.calls.getFreshToken, 1);
  await assert.rejects(sdk.getChatsSummary(), (e) => {
    assert.equal(e.code, 'AUTHENTICATION');
    assert.equal(typeof e.error, 'string');
    return true;
  });
  assert.equal(auth.calls.getFreshToken, 1);
});

test('resume after the gateway cut the stream: every event once, connection_lost then connection_restored', async (t) => {
  const token = newToken('resume');
  const streams = []; // the Last-Event-ID of every stream request
  const fetchSpy = (url, opts) => {
    if (String(url).endsWith('/v1/events')) streams.push(new Headers(opts.headers).get('Last-Event-ID'));
    return fetch(url, opts);
  };
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(token), fetch: fetchSpy });
  t.after(() => sdk.destroy());
  const rec = record(sdk);
  await rec.waitFor((n) => n === 'connected');
  const chat = await sdk.startChat();
  const say = (text) => env.sim.control('/agents/agent-r/message', { chat_id: chat.id, text });
  for (const text of ['m0', 'm1']) await say(text);
  await rec.waitFor(isNewEvent('m1'));
  const mark = rec.events.length;

  // SIGTERM: the gateway drains the stream (retry: hint) and stops; it
  // comes back on the same data dir. Meanwhile the agent goes on writing.
  const restart = env.gw.restart();
  await rec.waitFor((n) => n === 'connection_lost', { from: mark, what: 'connection_lost' });
  await say('m2');
  await restart;
  await say('m3');
  await rec.waitFor(isNewEvent('m3'), { from: mark, timeout: 20000, what: 'm3 after the restart' });
  await rec.waitFor((n) => n === 'connection_restored', { from: mark, what: 'connection_restored' });

  const texts = rec.events.filter(([n]) => n === 'new_event').map(([, d]) => d.event.text);
  assert.deepEqual(texts, ['m0', 'm1', 'm2', 'm3']);
  const after = rec.since(mark).map(([n]) => n);
  assert.equal(after.filter((n) => n === 'connection_lost').length, 1, JSON.stringify(after));
  assert.equal(after.filter((n) => n === 'connection_restored').length, 1, JSON.stringify(after));
  assert.ok(after.indexOf('connection_lost') < after.indexOf('connection_restored'));
  assert.ok(!after.includes('connected'), 'a second connected: ' + JSON.stringify(after));
  assert.equal(rec.names().filter((n) => n === 'customer_id').length, 1);

  // The first stream started fresh; every later one resumed.
  assert.equal(streams[0], null);
  assert.ok(streams.length >= 2 && streams.slice(1).every((id) => id), JSON.stringify(streams));

  // Calls work after it.
  const ev = await sdk.sendMessage(chat.id, { text: 'after' });
  assert.equal(ev.text, 'after');
});
