// The stream against a scripted server (no gateway): a stream gone silent
// is taken for dead and resumed with Last-Event-ID; what the resumed
// stream repeats is dropped; connection_lost and connection_restored once.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';

import { init } from '../dist/index.mjs';
import { makeAuth, record } from './harness.mjs';

const summary = { chatsSummary: [], totalChats: 0 };
const ev = (id, name, data) => `id: ${id}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
const msg = (text) => ({ chat: 'C1', event: { id: text, type: 'message', text, author: 'a', timestamp: 1, thread: 'T1' } });

test('a silent stream is resumed with Last-Event-ID, and what it repeats is dropped', async (t) => {
  const requests = [];
  const open = new Set();
  const srv = createServer((req, res) => {
    if (req.url === '/v1/events') {
      requests.push({ lastEventId: req.headers['last-event-id'], instance: req.headers['x-client-instance'], auth: req.headers.authorization });
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      open.add(res);
      res.on('close', () => open.delete(res));
      if (requests.length === 1) {
        res.write('retry: 50\n\n' + ev(1, 'customer_id', 'cust-1') + ev(2, 'connected', summary) + ev(3, 'new_event', msg('one')));
        return; // then silence
      }
      // The resumed stream repeats 3 (as a replica might) and goes on.
      res.write(ev(3, 'new_event', msg('one')) + ev(4, 'new_event', msg('two')));
      return;
    }
    if (req.url.startsWith('/v1/chats?')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(summary));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => { for (const r of open) r.destroy(); srv.close(); });

  const sdk = init({ gatewayUrl: `http://127.0.0.1:${srv.address().port}`, auth: makeAuth('tok-x'), idleTimeout: 300 });
  t.after(() => sdk.destroy());
  const rec = record(sdk);
  await rec.waitFor((n, d) => n === 'new_event' && d.event.text === 'two', { what: 'two' });
  await rec.waitFor((n) => n === 'connection_restored', { what: 'connection_restored' });
  const texts = rec.events.filter(([n]) => n === 'new_event').map(([, d]) => d.event.text);
  assert.deepEqual(texts, ['one', 'two']);
  const names = rec.names();
  assert.equal(names.filter((n) => n === 'connection_lost').length, 1);
  assert.equal(names.filter((n) => n === 'connection_restored').length, 1);
  assert.equal(names.filter((n) => n === 'connected').length, 1);
  assert.ok(names.indexOf('connection_lost') > names.indexOf('new_event'), JSON.stringify(names));
  assert.equal(requests[0].lastEventId, undefined);
  assert.equal(requests[1].lastEventId, '3');
  assert.equal(requests[1].instance, requests[0].instance);
  assert.equal(requests[1].auth, 'Bearer tok-x');
});
