// Two instances of one customer, as two browser tabs: each sees the
// other's actions as the SDK would (the events of the other's call
// results), and none of its own (the SDK resolves its own calls instead).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { init } from '../dist/index.mjs';
import { isNewEvent, makeAuth, newToken, record, withGateway } from './harness.mjs';

const env = withGateway();

test('two tabs: each sees the other\'s calls, not its own', async (t) => {
  const token = newToken('tabs');
  const a = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  const b = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  t.after(() => { a.destroy(); b.destroy(); });
  assert.notEqual(a.instanceId, b.instanceId);
  const ra = record(a), rb = record(b);
  await ra.waitFor((n) => n === 'connected');
  await rb.waitFor((n) => n === 'connected');

  // A starts a chat: user_data and thread_summary on both (the SDK emits
  // them for its own startChat; the other tab's gets incoming_chat_thread).
  let ma = ra.events.length, mb = rb.events.length;
  const chat = await a.startChat();
  for (const r of [ra, rb]) await r.waitFor((n, d) => n === 'thread_summary' && d.chat === chat.id, { what: 'thread_summary' });

  // Each action, then an agent message as a fence: everything before it has arrived.
  let fence = 0;
  const step = async (what, act) => {
    ma = ra.events.length; mb = rb.events.length;
    await act();
    const text = `fence ${++fence}`;
    await env.sim.control('/agents/agent-tabs/message', { chat_id: chat.id, text });
    await ra.waitFor(isNewEvent(text), { from: ma, what: `${what}: fence on a` });
    await rb.waitFor(isNewEvent(text), { from: mb, what: `${what}: fence on b` });
    const strip = (evs) => evs.filter(([n, d]) => !(n === 'new_event' && d.event.text === text) && n !== 'user_data' && n !== 'user_joined_chat');
    return { a: strip(ra.since(ma)), b: strip(rb.since(mb)) };
  };

  let got = await step('a sends', () => a.sendMessage(chat.id, { text: 'from a' }));
  assert.deepEqual(got.a, []);
  assert.deepEqual(got.b.map(([n, d]) => [n, d.chat, d.event.text]), [['new_event', chat.id, 'from a']]);

  got = await step('b sends', () => b.sendMessage(chat.id, { text: 'from b', customId: 'cb' }));
  assert.deepEqual(got.b, []);
  assert.deepEqual(got.a.map(([n, d]) => [n, d.event.text, d.event.customId]), [['new_event', 'from b', 'cb']]);

  got = await step('b updates chat properties', () => b.updateChatProperties(chat.id, { p: { v: 1 } }));
  assert.deepEqual(got.b, []);
  assert.deepEqual(got.a, [['chat_properties_updated', { chat: chat.id, properties: { p: { v: 1 } } }]]);

  got = await step('a updates thread properties', () => a.updateChatThreadProperties(chat.id, chat.threads[0], { q: { w: 2 } }));
  assert.deepEqual(got.a, []);
  assert.deepEqual(got.b, [['chat_thread_properties_updated', { chat: chat.id, thread: chat.threads[0], properties: { q: { w: 2 } } }]]);

  got = await step('a updates the customer', () => a.updateCustomer({ name: 'Tab A' }));
  assert.deepEqual(got.a, []);

  got = await step('b closes the thread', () => b.closeThread(chat.id));
  assert.deepEqual(got.b.filter(([n]) => n === 'thread_closed'), []);
  assert.equal(got.a.filter(([n, d]) => n === 'thread_closed' && d.chat === chat.id).length, 1);
});
