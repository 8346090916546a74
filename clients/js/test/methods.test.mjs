// Every method and every event of one instance, against a real gateway and
// simulator.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import chatIoCustomerSDK, { GatewayError, init, $$observable } from '../dist/index.mjs';
import { customerIdOf, isNewEvent, makeAuth, newToken, record, waitUntil, withGateway } from './harness.mjs';

const env = withGateway();

const agent = (path, body) => env.sim.control(`/agents/agent-js${path}`, { name: 'Agent JS', ...body });

test('init returns at once, emits customer_id then connected, and every method resolves what the SDK resolves', async (t) => {
  const token = newToken();
  const auth = makeAuth(token);
  const sdk = chatIoCustomerSDK.init({ gatewayUrl: env.gw.url, auth });
  t.after(() => sdk.destroy());
  assert.equal(sdk.auth, auth);
  assert.equal(typeof init, 'function');
  const rec = record(sdk);
  await rec.waitFor((n) => n === 'connected', { what: 'connected' });
  assert.deepEqual(rec.events[0], ['customer_id', customerIdOf(token)]);
  assert.deepEqual(rec.events.at(-1), ['connected', { chatsSummary: [], totalChats: 0 }]);

  // startChat: the chat; user_data per user and thread_summary, as the SDK emits for its own call.
  let mark = rec.events.length;
  const chat = await sdk.startChat({ properties: { source: { page: 'test' } } });
  assert.equal(typeof chat.id, 'string');
  assert.equal(chat.threads.length, 1);
  assert.deepEqual(chat.properties, { source: { page: 'test' } });
  await rec.waitFor((n, d) => n === 'thread_summary' && d.chat === chat.id, { from: mark, what: 'thread_summary' });
  assert.ok(rec.since(mark).some(([n, d]) => n === 'user_data' && d.id === customerIdOf(token)));
  const thread = chat.threads[0];

  // sendMessage / sendEvent: the event; no new_event for this instance's own call.
  mark = rec.events.length;
  const msg = await sdk.sendMessage(chat.id, { text: 'hello', customId: 'c-1' });
  assert.equal(msg.type, 'message');
  assert.equal(msg.text, 'hello');
  assert.equal(msg.customId, 'c-1');
  assert.equal(msg.thread, thread);
  const ev = await sdk.sendEvent(chat.id, { type: 'message', text: 'as an event' });
  assert.equal(ev.text, 'as an event');

  // Agent's message: new_event; typing: user_is_typing / user_stopped_typing.
  await agent('/typing', { chat_id: chat.id, is_typing: true });
  await rec.waitFor((n, d) => n === 'user_is_typing' && d.chat === chat.id, { from: mark, what: 'user_is_typing' });
  await agent('/typing', { chat_id: chat.id, is_typing: false });
  await rec.waitFor((n, d) => n === 'user_stopped_typing' && d.user === 'agent-js', { from: mark, what: 'user_stopped_typing' });
  await agent('/message', { chat_id: chat.id, text: 'agent says hi' });
  await rec.waitFor(isNewEvent('agent says hi'), { from: mark, what: 'the agent message' });
  assert.ok(!rec.since(mark).some(([n, d]) => n === 'new_event' && ['hello', 'as an event'].includes(d.event.text)),
    'an own call\'s result came back as new_event: ' + JSON.stringify(rec.since(mark)));
  assert.ok(rec.since(mark).some(([n, d]) => n === 'user_joined_chat' && d.user === 'agent-js'), 'no user_joined_chat');
  assert.ok(rec.since(mark).some(([n, d]) => n === 'user_data' && d.id === 'agent-js' && d.type === 'agent'), 'no agent user_data');

  // Summaries, threads, history.
  const summary = await sdk.getChatsSummary({ offset: 0, limit: 5 });
  assert.equal(summary.totalChats, 1);
  assert.equal(summary.chatsSummary[0].id, chat.id);
  assert.equal(summary.chatsSummary[0].lastEvent.text, 'agent says hi');
  const ts = await sdk.getChatThreadsSummary(chat.id, { offset: 0, limit: 10 });
  assert.equal(ts.totalThreads, 1);
  assert.equal(ts.threadsSummary[0].id, thread);
  const threads = await sdk.getChatThreads(chat.id, [thread]);
  assert.equal(threads.length, 1);
  assert.deepEqual(threads[0].events.filter((e) => e.type === 'message').map((e) => e.text), ['hello', 'as an event', 'agent says hi']);
  const it = sdk.getChatHistory(chat.id);
  const first = await it.next();
  assert.equal(first.done, true);
  assert.deepEqual(first.value.filter((e) => e.type === 'message').map((e) => e.text), ['hello', 'as an event', 'agent says hi']);
  assert.deepEqual(await it.next(), { done: true });

  // Properties, customer, seen: {success: true}; the agent's own updates are events.
  mark = rec.events.length;
  assert.deepEqual(await sdk.updateChatProperties(chat.id, { source: { page: 'two' } }), { success: true });
  assert.deepEqual(await sdk.updateChatThreadProperties(chat.id, thread, { tag: { v: 1 } }), { success: true });
  assert.deepEqual(await sdk.updateCustomer({ name: 'Jo', email: 'jo@example.com', fields: { plan: 'pro' } }), { success: true });
  const seen = await sdk.updateLastSeenTimestamp(chat.id);
  assert.equal(typeof seen.timestamp, 'number');
  await agent('/properties', { chat_id: chat.id, properties: { agent: { note: 'x' } } });
  await agent('/properties', { chat_id: chat.id, thread_id: thread, properties: { agent: { note: 'y' } } });
  await agent('/seen', { chat_id: chat.id });
  await rec.waitFor((n, d) => n === 'chat_properties_updated' && d.properties.agent, { from: mark, what: 'chat_properties_updated' });
  await rec.waitFor((n, d) => n === 'chat_thread_properties_updated' && d.thread === thread, { from: mark, what: 'chat_thread_properties_updated' });
  await rec.waitFor((n, d) => n === 'last_seen_timestamp_updated' && d.user === 'agent-js', { from: mark, what: 'last_seen_timestamp_updated' });
  // Own updates are not emitted back (the SDK resolves them).
  assert.ok(!rec.since(mark).some(([n, d]) => n === 'chat_properties_updated' && d.properties.source), 'own chat_properties_updated emitted');

  // Sneak peek: resolves nothing, reaches chat.io.
  assert.equal(sdk.setSneakPeek(chat.id, 'typing th'), undefined);
  await waitUntil('the sneak peek', async () => {
    const c = await env.sim.control(`/chats/${chat.id}`);
    return JSON.stringify(c).includes('typing th');
  });

  // Rating (gateway's sendRating); closeThread resolves {success: true}
  // and, as the SDK's own call, emits no thread_closed.
  assert.deepEqual(await sdk.sendRating(chat.id, { value: 'good', comment: 'nice' }), { value: 'good', comment: 'nice' });
  mark = rec.events.length;
  assert.deepEqual(await sdk.closeThread(chat.id), { success: true });

  // The agent writes again: a new thread (incoming_chat_thread: thread_summary and new_event).
  await agent('/message', { chat_id: chat.id, text: 'new thread' });
  await rec.waitFor(isNewEvent('new thread'), { from: mark, what: 'new thread message' });
  assert.ok(!rec.since(mark).some(([n]) => n === 'thread_closed'), 'own closeThread emitted thread_closed');
  assert.ok(rec.since(mark).some(([n, d]) => n === 'thread_summary' && d.chat === chat.id && d.thread !== thread), 'no thread_summary of the new thread');
  // The agent closes it (thread_closed) and leaves (user_left_chat).
  await agent('/close', { chat_id: chat.id });
  await rec.waitFor((n, d) => n === 'thread_closed' && d.chat === chat.id, { from: mark, what: 'thread_closed' });
  await env.sim.control('/agents/agent-js/leave', { chat_id: chat.id });
  await rec.waitFor((n, d) => n === 'user_left_chat' && d.user === 'agent-js', { from: mark, what: 'user_left_chat' });

  // History: pages newest first until done, every event once.
  const h = sdk.getChatHistory(chat.id);
  const pages = [];
  for (let r = await h.next(); ; r = await h.next()) {
    if (r.value) pages.unshift(r.value);
    if (r.done) break;
  }
  assert.deepEqual(pages.flat().filter((e) => e.type === 'message').map((e) => e.text), ['hello', 'as an event', 'agent says hi', 'new thread']);
});

test('errors carry the SDK code and type', async (t) => {
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(newToken()) });
  t.after(() => sdk.destroy());
  await assert.rejects(sdk.getChatsSummary({ limit: 30 }), (e) => {
    assert.ok(e instanceof GatewayError);
    assert.equal(e.code, 'INVALID_ARGS');
    assert.equal(e.reason, 'Specified limit is too high (max 25).');
    return true;
  });
  await assert.rejects(sdk.sendMessage('NOSUCHCHAT', { text: 'x' }), (e) => {
    assert.equal(e.code, 'REQUEST_FAILED');
    assert.equal(e.type, 'not_found');
    assert.equal(e.status, 404);
    return true;
  });
  await assert.rejects(sdk.sendRating('NOSUCHCHAT', { value: 'meh' }), { code: 'INVALID_ARGS' });
});

test('on, off, * and $$observable', async (t) => {
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(newToken()) });
  t.after(() => sdk.destroy());
  const got = [];
  const onConnected = (d) => got.push(['on', d.totalChats]);
  sdk.on('connected', onConnected);
  const obs = sdk[$$observable]();
  assert.equal(sdk['@@observable'], sdk[$$observable]);
  const seen = [];
  const unsubscribe = obs.subscribe({ next: (v) => seen.push(v) });
  assert.throws(() => obs.subscribe(null), TypeError);
  const rec = record(sdk);
  await rec.waitFor((n) => n === 'connected');
  assert.deepEqual(got, [['on', 0]]);
  assert.deepEqual(seen.map((v) => v[0]), rec.names());
  sdk.off('connected', onConnected);
  unsubscribe();
  const chat = await sdk.startChat();
  await rec.waitFor((n) => n === 'thread_summary');
  assert.deepEqual(got, [['on', 0]]);
  assert.equal(seen.length, rec.names().indexOf('connected') + 1);
  assert.ok(chat.id);
});

test('disconnect: connection_lost, calls refused, nothing more', async () => {
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(newToken()) });
  const rec = record(sdk);
  await rec.waitFor((n) => n === 'connected');
  sdk.disconnect();
  assert.deepEqual(rec.events.at(-1), ['connection_lost', undefined]);
  await assert.rejects(sdk.getChatsSummary(), { code: 'CONNECTION_LOST' });
  sdk.destroy();
});

test('disconnected: the session ended by chat.io ends the stream; endSession ends it for every tab', async () => {
  const token = newToken();
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  const rec = record(sdk);
  await rec.waitFor((n) => n === 'connected');
  await env.sim.control(`/customers/${customerIdOf(token)}/disconnect`, { reason: 'too_many_connections' });
  const [, data] = await rec.waitFor((n) => n === 'disconnected', { what: 'disconnected' });
  assert.equal(data.reason, 'too_many_connections');
  sdk.destroy();

  const a = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  const b = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  const ra = record(a), rb = record(b);
  await ra.waitFor((n) => n === 'connected');
  await rb.waitFor((n) => n === 'connected');
  await a.endSession();
  await ra.waitFor((n) => n === 'disconnected', { what: 'disconnected on a' });
  await rb.waitFor((n) => n === 'disconnected', { what: 'disconnected on b' });
  a.destroy();
  b.destroy();
});

test('connection_lost and connection_restored when chat.io drops the socket', async (t) => {
  const token = newToken();
  const sdk = init({ gatewayUrl: env.gw.url, auth: makeAuth(token) });
  t.after(() => sdk.destroy());
  const rec = record(sdk);
  await rec.waitFor((n) => n === 'connected');
  const chat = await sdk.startChat();
  const mark = rec.events.length;
  await env.sim.control(`/customers/${customerIdOf(token)}/drop`, {});
  await rec.waitFor((n) => n === 'connection_lost', { from: mark, what: 'connection_lost' });
  const [, restored] = await rec.waitFor((n) => n === 'connection_restored', { from: mark, what: 'connection_restored' });
  assert.equal(restored.totalChats, 1);
  assert.equal(restored.chatsSummary[0].id, chat.id);
  assert.equal(rec.since(mark).filter(([n]) => n === 'connection_lost').length, 1);
});
