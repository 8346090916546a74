// @chatio-gateway/customer-sdk: the chat.io Customer JS SDK 0.9.1's API
// over chatio-gateway's REST calls and Server-Sent-Events stream.
//
//   import chatIoCustomerSDK from '@chatio-gateway/customer-sdk'
//   const sdk = chatIoCustomerSDK.init({ gatewayUrl: 'https://chat-gw.example', auth })
//
// An instance opens its stream at init (as the SDK connects), resumes it
// with Last-Event-ID after any cut, and sends a random instance id
// (X-Client-Instance) on the stream and on every call: the gateway then
// leaves out of this instance's stream the events that report its own
// calls to the customer's other tabs, which the SDK does not emit either.

import { createParser, type EventSourceMessage } from 'eventsource-parser';

import { Emitter, type Handler, type WildcardHandler } from './emitter.js';
import { GatewayError, errorFrom } from './errors.js';
import type {
  Auth,
  Chat,
  ChatEvent,
  ChatsSummaryPage,
  EventMap,
  EventName,
  FileData,
  HistoryIterator,
  MessageData,
  Pagination,
  Properties,
  Rating,
  SendFileSpec,
  StartChatData,
  Success,
  Thread,
  ThreadsSummaryPage,
  Token,
  Upload,
} from './types.js';
import { upload } from './upload.js';

export * from './types.js';
export { GatewayError, type ErrorCode } from './errors.js';

/** The key of the instance's interop observable (`symbol-observable`'s, as the SDK's). */
export const $$observable: symbol | '@@observable' =
  (typeof Symbol === 'function' && (Symbol as unknown as { observable?: symbol }).observable) || '@@observable';

export interface InitConfig {
  /** The gateway's origin (and path prefix, if any), e.g. `https://chat-gw.example`. */
  gatewayUrl: string;
  /** The SDK's auth object (`@livechat/chat.io-customer-auth`'s, or any with its shape). */
  auth: Auth;
  /** Told when the stream gives up (its token refused twice, a bad request): the SDK has no event for it. */
  onError?: (error: GatewayError) => void;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Milliseconds without a byte on the stream (the gateway sends a heartbeat every 15 s) after which it is taken for dead and resumed; default 45000. */
  idleTimeout?: number;
}

export interface Observer {
  next?: (value: [string, unknown]) => void;
}

export interface CustomerSDK {
  readonly auth: Auth;
  startChat(data?: StartChatData): Promise<Chat>;
  getChatsSummary(pagination?: Pagination): Promise<ChatsSummaryPage>;
  getChatThreads(chat: string, threads: string[]): Promise<Thread[]>;
  getChatThreadsSummary(chat: string, pagination?: Pagination): Promise<ThreadsSummaryPage>;
  getChatHistory(chat: string): HistoryIterator;
  sendEvent(chat: string, event: Record<string, unknown>): Promise<ChatEvent>;
  sendMessage(chat: string, message: MessageData): Promise<ChatEvent>;
  sendFile(chat: string, data: FileData, spec?: SendFileSpec): Upload;
  sendRating(chat: string, rating: Rating): Promise<Rating>;
  setSneakPeek(chat: string, text: string): void;
  closeThread(chat: string): Promise<Success>;
  updateChatProperties(chat: string, properties: Properties): Promise<Success>;
  updateChatThreadProperties(chat: string, thread: string, properties: Properties): Promise<Success>;
  updateCustomer(properties: { name?: string; email?: string; fields?: Record<string, string> }): Promise<Success>;
  updateLastSeenTimestamp(chat: string, timestamp?: number): Promise<{ timestamp: number }>;
  /** Closes this instance's stream (`connection_lost`); calls made after it are rejected `CONNECTION_LOST`. */
  disconnect(): void;
  /** disconnect(), without any more events. */
  destroy(): void;
  /** Beyond the SDK: ends the customer's session on the gateway for every tab (`DELETE /v1/session`). */
  endSession(): Promise<void>;
  on<K extends EventName>(name: K, handler: (data: EventMap[K]) => void): void;
  on(name: '*', handler: (name: string, data: unknown) => void): void;
  /** Any other upstream push, named after its action (as the SDK emits it). */
  on(name: string, handler: (data: unknown) => void): void;
  off<K extends EventName>(name: K, handler?: (data: EventMap[K]) => void): void;
  off(name: '*', handler?: (name: string, data: unknown) => void): void;
  off(name: string, handler?: (data: unknown) => void): void;
  /** Beyond the SDK: this instance's id, sent as X-Client-Instance. */
  readonly instanceId: string;
  [key: symbol]: () => { subscribe(observer: Observer): () => void };
  '@@observable'(): { subscribe(observer: Observer): () => void };
}

const MAX_FILE = 10 * 1024 * 1024; // the SDK's validateFile limit
const SNEAK_PEEK_INTERVAL = 2000; // the SDK's throttle
const BACKOFF_MIN = 250;
const BACKOFF_MAX = 30000;
// A stream that brings nothing, not even the gateway's heartbeat comment
// (every 15 s by default), for this long is taken for dead and resumed.
const STREAM_IDLE = 45000;

/** init returns the instance at once and opens its stream (as the SDK connects). */
export function init(config: InitConfig): CustomerSDK {
  if (!config || typeof config !== 'object') throw new TypeError('init: expected {gatewayUrl, auth}');
  const { auth } = config;
  if (!auth || typeof auth.getToken !== 'function' || typeof auth.getFreshToken !== 'function') {
    throw new TypeError('init: auth must have getToken() and getFreshToken()');
  }
  let base: URL;
  try {
    base = new URL(config.gatewayUrl);
  } catch {
    throw new TypeError('init: gatewayUrl must be an absolute http(s) URL');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('init: gatewayUrl must be http(s)');
  return new Instance(config, base.href.replace(/\/+$/, '')) as unknown as CustomerSDK;
}

const sdk = { init };
export default sdk;

// ---- the instance ----

class Instance {
  readonly auth: Auth;
  readonly instanceId = randomId();
  private readonly url: string;
  private readonly fetch: typeof fetch;
  private readonly onError: ((e: GatewayError) => void) | undefined;
  private readonly idleTimeout: number;
  private readonly emitter = new Emitter();
  private readonly calls = new AbortController(); // aborted by disconnect: every call made after is refused
  private stopped = false; // disconnect() or destroy()
  private ended = false; // the gateway ended the session (disconnected): no resuming
  private lastWasDisconnected = false; // the stream's last event was "disconnected"

  // The stream.
  private streamAbort: AbortController | null = null;
  private lastId = '';
  private lastSeq = -1;
  private retryMs = 1000; // the gateway's retry: hint
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private customerId: string | undefined;
  private connectedOnce = false;
  private lost = false; // between connection_lost and connection_restored
  private restoring = 0; // generation of the summary fetch after a resume

  // setSneakPeek's throttle, per chat.
  private readonly peeks = new Map<string, { last: number; text: string | null; timer: ReturnType<typeof setTimeout> | undefined }>();

  constructor(config: InitConfig, url: string) {
    this.auth = config.auth;
    this.url = url;
    this.fetch = config.fetch ?? globalThis.fetch.bind(globalThis);
    this.onError = config.onError;
    this.idleTimeout = config.idleTimeout && config.idleTimeout > 0 ? config.idleTimeout : STREAM_IDLE;
    // The SDK emits customer_id from its token as it starts.
    this.auth.getToken().then(
      (t) => this.emitCustomerId(t.entityId),
      () => {},
    );
    queueMicrotask(() => void this.openStream(false));
  }

  // ---- REST ----

  private async headers(token?: Token): Promise<Record<string, string>> {
    const t = token ?? (await this.auth.getToken());
    const h: Record<string, string> = {
      Authorization: 'Bearer ' + t.accessToken,
      'X-Client-Instance': this.instanceId,
    };
    if (validCustomerId(t.entityId)) h['X-Customer-Id'] = t.entityId;
    return h;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (this.calls.signal.aborted) throw new GatewayError('CONNECTION_LOST', 'the instance is disconnected');
    const headers = await this.headers();
    const init: RequestInit = { method, headers, cache: 'no-store', credentials: 'omit', signal: this.calls.signal };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await this.fetch(this.url + path, init);
    } catch (e) {
      throw new GatewayError('CONNECTION_LOST', this.calls.signal.aborted ? 'the instance is disconnected' : 'the gateway cannot be reached');
    }
    let data: unknown = null;
    if (res.status !== 204) {
      const text = await res.text().catch(() => '');
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = null;
        }
      }
    }
    if (!res.ok) throw errorFrom(res.status, data, res.headers.get('Retry-After'));
    return data as T;
  }

  startChat(data: StartChatData = {}): Promise<Chat> {
    return this.call('POST', '/v1/chats', data);
  }

  getChatsSummary(pagination: Pagination = {}): Promise<ChatsSummaryPage> {
    const { offset = 0, limit = 10 } = pagination;
    return this.call('GET', `/v1/chats?offset=${num(offset)}&limit=${num(limit)}`);
  }

  getChatThreads(chat: string, threads: string[]): Promise<Thread[]> {
    const ids = (Array.isArray(threads) ? threads : []).map(String).join(',');
    return this.call('GET', `${chatPath(chat)}/threads?ids=${encodeURIComponent(ids)}`);
  }

  getChatThreadsSummary(chat: string, pagination: Pagination = {}): Promise<ThreadsSummaryPage> {
    const { offset = 0, limit = 25 } = pagination;
    return this.call('GET', `${chatPath(chat)}/threads-summary?offset=${num(offset)}&limit=${num(limit)}`);
  }

  getChatHistory(chat: string): HistoryIterator {
    let cursor = '';
    let done = false;
    let queue: Promise<unknown> = Promise.resolve();
    const page = async (): Promise<{ value: ChatEvent[]; done: boolean } | { done: true }> => {
      if (done) return { done: true };
      const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
      const p = await this.call<{ events: ChatEvent[]; done: boolean; cursor?: string }>('GET', `${chatPath(chat)}/history${q}`);
      cursor = p.cursor ?? '';
      done = !!p.done || !cursor;
      return { value: p.events, done };
    };
    const it: HistoryIterator = {
      // One page at a time, in call order (the SDK queues them too).
      next: () => {
        const r = queue.then(page, page);
        queue = r.catch(() => {});
        return r as ReturnType<HistoryIterator['next']>;
      },
      [Symbol.asyncIterator]: () => it,
    };
    (it as unknown as Record<string, unknown>)['@@asyncIterator'] = () => it;
    return it;
  }

  sendEvent(chat: string, event: Record<string, unknown>): Promise<ChatEvent> {
    return this.call('POST', `${chatPath(chat)}/events`, event);
  }

  sendMessage(chat: string, message: MessageData): Promise<ChatEvent> {
    return this.sendEvent(chat, { ...message, type: 'message' });
  }

  sendFile(chat: string, data: FileData, spec: SendFileSpec = {}): Upload {
    const ctl = new AbortController();
    let cancelled = false;
    const send = (async () => {
      const file = data && data.file;
      if (!file || typeof (file as Blob).size !== 'number') {
        throw new GatewayError('INVALID_ARGS', 'You need to specify the file.');
      }
      if (file.size > MAX_FILE) throw new GatewayError('INVALID_ARGS', 'The file is too big (max size is 10.00 MB).');
      if (this.calls.signal.aborted) throw new GatewayError('CONNECTION_LOST', 'the instance is disconnected');
      const headers = await this.headers();
      if (cancelled) throw new GatewayError('CANCELLED', 'the upload was cancelled');
      const form = new FormData();
      if (data.customId !== undefined) form.append('customId', String(data.customId));
      const name = (file as File).name;
      form.append('file', file, typeof name === 'string' && name ? name : 'file');
      const stop = () => ctl.abort();
      this.calls.signal.addEventListener('abort', stop, { once: true });
      try {
        return (await upload({
          url: `${this.url}${chatPath(chat)}/files`,
          headers,
          form,
          onProgress: spec && typeof spec.onProgress === 'function' ? spec.onProgress : undefined,
          signal: ctl.signal,
          fetch: this.fetch,
        })) as { url: string };
      } finally {
        this.calls.signal.removeEventListener('abort', stop);
      }
    })();
    return {
      then: (ok, fail) => send.then(ok, fail),
      catch: (fail) => send.catch(fail),
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        ctl.abort();
      },
    };
  }

  sendRating(chat: string, rating: Rating): Promise<Rating> {
    return this.call('POST', `${chatPath(chat)}/rating`, rating);
  }

  // The SDK throttles it (2 s, latest text trailing) and resolves nothing;
  // the gateway throttles it upstream again.
  setSneakPeek(chat: string, text: string): void {
    const key = String(chat);
    let p = this.peeks.get(key);
    if (!p) {
      p = { last: 0, text: null, timer: undefined };
      this.peeks.set(key, p);
    }
    const state = p;
    const fire = (t: string) => {
      state.last = Date.now();
      state.text = null;
      this.call('PUT', `${chatPath(key)}/sneak-peek`, { text: t }).catch(() => {});
    };
    const wait = state.last + SNEAK_PEEK_INTERVAL - Date.now();
    if (wait <= 0 && state.timer === undefined) {
      fire(String(text));
      return;
    }
    state.text = String(text);
    if (state.timer === undefined) {
      state.timer = setTimeout(() => {
        state.timer = undefined;
        if (state.text !== null && !this.stopped) fire(state.text);
      }, Math.max(wait, 0));
    }
  }

  closeThread(chat: string): Promise<Success> {
    return this.call('POST', `${chatPath(chat)}/close-thread`);
  }

  updateChatProperties(chat: string, properties: Properties): Promise<Success> {
    return this.call('PATCH', `${chatPath(chat)}/properties`, properties);
  }

  updateChatThreadProperties(chat: string, thread: string, properties: Properties): Promise<Success> {
    return this.call('PATCH', `${chatPath(chat)}/threads/${encodeURIComponent(thread)}/properties`, properties);
  }

  updateCustomer(properties: { name?: string; email?: string; fields?: Record<string, string> }): Promise<Success> {
    return this.call('PATCH', '/v1/customer', properties);
  }

  updateLastSeenTimestamp(chat: string, timestamp?: number): Promise<{ timestamp: number }> {
    return this.call('POST', `${chatPath(chat)}/last-seen`, timestamp === undefined ? {} : { timestamp });
  }

  disconnect(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.closeStream();
    this.calls.abort();
    for (const p of this.peeks.values()) clearTimeout(p.timer);
    this.peeks.clear();
    if (this.connectedOnce && !this.lost) {
      this.lost = true;
      this.emitter.emit('connection_lost', undefined);
    }
  }

  destroy(): void {
    this.emitter.clear();
    this.disconnect();
  }

  async endSession(): Promise<void> {
    await this.call('DELETE', '/v1/session');
  }

  on(name: string, handler: Handler | WildcardHandler): void {
    this.emitter.on(name, handler);
  }

  off(name: string, handler?: Handler | WildcardHandler): void {
    this.emitter.off(name, handler);
  }

  // ---- the stream ----

  private closeStream(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.streamAbort?.abort();
    this.streamAbort = null;
  }

  /** openStream opens (or resumes) the stream; fresh: the token is getFreshToken's (once after a 401). */
  private async openStream(fresh: boolean): Promise<void> {
    if (this.stopped || this.ended) return;
    const ctl = new AbortController();
    this.streamAbort = ctl;
    let res: Response;
    try {
      const token = fresh ? await this.auth.getFreshToken() : await this.auth.getToken();
      if (ctl.signal.aborted) return;
      const headers = await this.headers(token);
      headers.Accept = 'text/event-stream';
      if (this.lastId) headers['Last-Event-ID'] = this.lastId;
      res = await this.fetch(this.url + '/v1/events', { headers, cache: 'no-store', credentials: 'omit', signal: ctl.signal });
    } catch {
      if (ctl.signal.aborted) return;
      return this.streamCut(ctl);
    }
    if (res.status === 401 && !fresh) {
      void res.body?.cancel().catch(() => {});
      // As the SDK does when its login is refused: once more with a fresh token.
      return this.openStream(true);
    }
    if (!res.ok) {
      let body: unknown = null;
      try {
        body = await res.json();
      } catch {
        /* not JSON */
      }
      const err = errorFrom(res.status, body, res.headers.get('Retry-After'));
      if (res.status === 401 || res.status === 400 || res.status === 403 || res.status === 404) {
        this.giveUp(err);
        return;
      }
      return this.streamCut(ctl, err.retryAfter);
    }
    this.attempt = 0;
    this.lastWasDisconnected = false;
    if (this.lost && this.connectedOnce) void this.restore(ctl);
    await this.read(res, ctl);
    if (ctl.signal.aborted) return;
    if (this.lastWasDisconnected) {
      // The gateway ended the session and its streams after "disconnected":
      // nothing to resume (a new init starts again).
      this.ended = true;
      this.streamAbort = null;
      return;
    }
    this.streamCut(ctl);
  }

  private giveUp(err: GatewayError): void {
    this.closeStream();
    if (this.onError) this.onError(err);
  }

  private async read(res: Response, ctl: AbortController): Promise<void> {
    if (!res.body) return;
    const parser = createParser({
      onEvent: (m) => this.onMessage(m),
      onRetry: (ms) => {
        if (ms > 0) this.retryMs = ms;
      },
    });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let idle: ReturnType<typeof setTimeout> | undefined;
    const watch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => void reader.cancel().catch(() => {}), this.idleTimeout);
    };
    try {
      watch();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || ctl.signal.aborted) break;
        watch();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      /* the stream was cut */
    } finally {
      clearTimeout(idle);
      reader.releaseLock();
    }
  }

  /** streamCut: the stream ended or could not open; try again after a while. */
  private streamCut(ctl: AbortController, retryAfter?: number): void {
    if (this.stopped || this.ended || this.streamAbort !== ctl) return;
    this.streamAbort = null;
    if (this.connectedOnce && !this.lost) {
      this.lost = true;
      this.emitter.emit('connection_lost', undefined);
    }
    const n = this.attempt++;
    let delay = n === 0 ? this.retryMs : Math.min(BACKOFF_MAX, Math.max(this.retryMs, BACKOFF_MIN) * 2 ** n) * (0.5 + Math.random() / 2);
    if (retryAfter !== undefined) delay = Math.max(delay, retryAfter * 1000);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.openStream(false);
    }, delay);
  }

  /** restore ends a connection_lost of ours once the resumed stream is open: with the current summary, as the SDK's reconnect does. */
  private async restore(ctl: AbortController): Promise<void> {
    const gen = ++this.restoring;
    let page: ChatsSummaryPage;
    try {
      page = await this.getChatsSummary();
    } catch {
      return; // the gateway's own connection_restored will come on the stream
    }
    if (gen !== this.restoring || ctl.signal.aborted || !this.lost || this.stopped) return;
    this.lost = false;
    this.emitter.emit('connection_restored', page);
  }

  private onMessage(m: EventSourceMessage): void {
    const name = m.event || 'message';
    if (m.id) {
      const seq = Number(m.id);
      if (Number.isSafeInteger(seq)) {
        if (seq <= this.lastSeq) return; // replayed twice: once is enough
        this.lastSeq = seq;
      }
      this.lastId = m.id;
    }
    this.lastWasDisconnected = name === 'disconnected';
    let data: unknown = undefined;
    if (m.data !== '') {
      try {
        data = JSON.parse(m.data);
      } catch {
        return;
      }
    }
    switch (name) {
      case 'customer_id':
        this.emitCustomerId(String(data));
        return;
      case 'connected':
        this.restoring++;
        if (!this.connectedOnce) {
          this.connectedOnce = true;
          this.lost = false;
          this.emitter.emit('connected', data);
          return;
        }
        // A snapshot after a resume the gateway could not replay: the SDK's reconnect.
        this.lost = false;
        this.emitter.emit('connection_restored', data);
        return;
      case 'connection_lost':
        if (this.lost) return;
        this.lost = true;
        this.emitter.emit('connection_lost', undefined);
        return;
      case 'connection_restored':
        this.restoring++;
        if (!this.lost && this.connectedOnce) return;
        this.lost = false;
        this.emitter.emit('connection_restored', data);
        return;
      // 'disconnected' is emitted as it is: when the gateway ends the
      // session with it, the stream ends after it, and read's caller
      // does not resume.
      default:
        this.emitter.emit(name, data);
    }
  }

  // The SDK emits customer_id once, from its token; the gateway's (the
  // same id: it is the X-Customer-Id sent) is the fallback for a token
  // without entityId.
  private emitCustomerId(id: string): void {
    if (!id || this.customerId !== undefined) return;
    this.customerId = id;
    this.emitter.emit('customer_id', id);
  }

  // ---- $$observable ----

  '@@observable'(): { subscribe(observer: Observer): () => void } {
    return this.observable();
  }

  private observable(): { subscribe(observer: Observer): () => void } {
    return {
      subscribe: (observer: Observer) => {
        if (!observer || typeof observer !== 'object') throw new TypeError('Expected the observer to be an object.');
        const fn = (name: string, data: unknown) => {
          if (typeof observer.next === 'function') observer.next([name, data]);
        };
        this.emitter.on('*', fn);
        return () => this.emitter.off('*', fn);
      },
    };
  }
}

// The interop observable, under Symbol.observable (when there is one) and '@@observable'.
const proto = Instance.prototype as unknown as Record<PropertyKey, unknown>;
if (typeof $$observable === 'symbol') proto[$$observable] = proto['@@observable'];

// ---- helpers ----

function chatPath(chat: string): string {
  return '/v1/chats/' + encodeURIComponent(String(chat));
}

function num(v: unknown): string {
  return encodeURIComponent(String(v));
}

function validCustomerId(id: unknown): id is string {
  // eslint-disable-next-line no-control-regex
  return typeof id === 'string' && id !== '' && new TextEncoder().encode(id).length <= 128 && !/[\u0000-\u001f\u007f-\u009f]/.test(id);
}

function randomId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
