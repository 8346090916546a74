/*! @chatio-gateway/customer-sdk 0.1.0 (Apache-2.0). Includes eventsource-parser 3.1.1, MIT License, Copyright (c) 2026 Espen Hovlandsdal <espen@hovlandsdal.com> */
"use strict";
var ChatioGatewaySDK = (() => {
  var __defProp = Object.defineProperty;
  var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
  var __getOwnPropNames = Object.getOwnPropertyNames;
  var __hasOwnProp = Object.prototype.hasOwnProperty;
  var __export = (target, all) => {
    for (var name in all)
      __defProp(target, name, { get: all[name], enumerable: true });
  };
  var __copyProps = (to, from, except, desc) => {
    if (from && typeof from === "object" || typeof from === "function") {
      for (let key of __getOwnPropNames(from))
        if (!__hasOwnProp.call(to, key) && key !== except)
          __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
    }
    return to;
  };
  var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

  // src/index.ts
  var index_exports = {};
  __export(index_exports, {
    $$observable: () => $$observable,
    GatewayError: () => GatewayError,
    default: () => index_default,
    init: () => init
  });

  // node_modules/eventsource-parser/dist/index.js
  var ParseError = class extends Error {
    constructor(message, options) {
      super(message), this.name = "ParseError", this.type = options.type, this.field = options.field, this.value = options.value, this.line = options.line;
    }
  };
  var LF = 10;
  var CR = 13;
  var SPACE = 32;
  function noop(_arg) {
  }
  function createParser(config) {
    if (typeof config == "function")
      throw new TypeError(
        "`config` must be an object, got a function instead. Did you mean `createParser({onEvent: fn})`?"
      );
    const { onEvent = noop, onError = noop, onRetry = noop, onComment, maxBufferSize } = config, pendingFragments = [];
    let pendingFragmentsLength = 0, isFirstChunk = true, id, data = "", dataLines = 0, eventType, terminated = false;
    function feed(chunk) {
      if (terminated)
        throw new Error(
          "Cannot feed parser: it was terminated after exceeding the configured max buffer size. Call `reset()` to resume parsing."
        );
      if (isFirstChunk && (isFirstChunk = false, chunk.charCodeAt(0) === 239 && chunk.charCodeAt(1) === 187 && chunk.charCodeAt(2) === 191 && (chunk = chunk.slice(3))), pendingFragments.length === 0) {
        const trailing2 = processLines(chunk);
        trailing2 !== "" && (pendingFragments.push(trailing2), pendingFragmentsLength = trailing2.length), checkBufferSize();
        return;
      }
      if (chunk.indexOf(`
`) === -1 && chunk.indexOf("\r") === -1) {
        pendingFragments.push(chunk), pendingFragmentsLength += chunk.length, checkBufferSize();
        return;
      }
      pendingFragments.push(chunk);
      const input = pendingFragments.join("");
      pendingFragments.length = 0, pendingFragmentsLength = 0;
      const trailing = processLines(input);
      trailing !== "" && (pendingFragments.push(trailing), pendingFragmentsLength = trailing.length), checkBufferSize();
    }
    function checkBufferSize() {
      maxBufferSize !== void 0 && (pendingFragmentsLength + data.length <= maxBufferSize || (terminated = true, pendingFragments.length = 0, pendingFragmentsLength = 0, id = void 0, data = "", dataLines = 0, eventType = void 0, onError(
        new ParseError(`Buffered data exceeded max buffer size of ${maxBufferSize} characters`, {
          type: "max-buffer-size-exceeded"
        })
      )));
    }
    function processLines(chunk) {
      let searchIndex = 0;
      if (chunk.indexOf("\r") === -1) {
        let lfIndex = chunk.indexOf(`
`, searchIndex);
        for (; lfIndex !== -1; ) {
          if (searchIndex === lfIndex) {
            dataLines > 0 && onEvent({ id, event: eventType, data }), id = void 0, data = "", dataLines = 0, eventType = void 0, searchIndex = lfIndex + 1, lfIndex = chunk.indexOf(`
`, searchIndex);
            continue;
          }
          const firstCharCode = chunk.charCodeAt(searchIndex);
          if (isDataPrefix(chunk, searchIndex, firstCharCode)) {
            const valueStart = chunk.charCodeAt(searchIndex + 5) === SPACE ? searchIndex + 6 : searchIndex + 5, value = chunk.slice(valueStart, lfIndex);
            if (dataLines === 0 && chunk.charCodeAt(lfIndex + 1) === LF) {
              onEvent({ id, event: eventType, data: value }), id = void 0, data = "", eventType = void 0, searchIndex = lfIndex + 2, lfIndex = chunk.indexOf(`
`, searchIndex);
              continue;
            }
            data = dataLines === 0 ? value : `${data}
${value}`, dataLines++;
          } else isEventPrefix(chunk, searchIndex, firstCharCode) ? eventType = chunk.slice(
            chunk.charCodeAt(searchIndex + 6) === SPACE ? searchIndex + 7 : searchIndex + 6,
            lfIndex
          ) || void 0 : parseLine(chunk, searchIndex, lfIndex);
          searchIndex = lfIndex + 1, lfIndex = chunk.indexOf(`
`, searchIndex);
        }
        return chunk.slice(searchIndex);
      }
      for (; searchIndex < chunk.length; ) {
        const crIndex = chunk.indexOf("\r", searchIndex), lfIndex = chunk.indexOf(`
`, searchIndex);
        let lineEnd = -1;
        if (crIndex !== -1 && lfIndex !== -1 ? lineEnd = crIndex < lfIndex ? crIndex : lfIndex : crIndex !== -1 ? crIndex === chunk.length - 1 ? lineEnd = -1 : lineEnd = crIndex : lfIndex !== -1 && (lineEnd = lfIndex), lineEnd === -1)
          break;
        parseLine(chunk, searchIndex, lineEnd), searchIndex = lineEnd + 1, chunk.charCodeAt(searchIndex - 1) === CR && chunk.charCodeAt(searchIndex) === LF && searchIndex++;
      }
      return chunk.slice(searchIndex);
    }
    function parseLine(chunk, start, end) {
      if (start === end) {
        dispatchEvent();
        return;
      }
      const firstCharCode = chunk.charCodeAt(start);
      if (isDataPrefix(chunk, start, firstCharCode)) {
        const valueStart = chunk.charCodeAt(start + 5) === SPACE ? start + 6 : start + 5, value2 = chunk.slice(valueStart, end);
        data = dataLines === 0 ? value2 : `${data}
${value2}`, dataLines++;
        return;
      }
      if (isEventPrefix(chunk, start, firstCharCode)) {
        eventType = chunk.slice(chunk.charCodeAt(start + 6) === SPACE ? start + 7 : start + 6, end) || void 0;
        return;
      }
      if (firstCharCode === 105 && chunk.charCodeAt(start + 1) === 100 && chunk.charCodeAt(start + 2) === 58) {
        const value2 = chunk.slice(chunk.charCodeAt(start + 3) === SPACE ? start + 4 : start + 3, end);
        value2.includes("\0") || (id = value2);
        return;
      }
      if (firstCharCode === 58) {
        if (onComment) {
          const line2 = chunk.slice(start, end);
          onComment(line2.slice(chunk.charCodeAt(start + 1) === SPACE ? 2 : 1));
        }
        return;
      }
      const line = chunk.slice(start, end), fieldSeparatorIndex = line.indexOf(":");
      if (fieldSeparatorIndex === -1) {
        processField(line, "", line);
        return;
      }
      const field = line.slice(0, fieldSeparatorIndex), offset = line.charCodeAt(fieldSeparatorIndex + 1) === SPACE ? 2 : 1, value = line.slice(fieldSeparatorIndex + offset);
      processField(field, value, line);
    }
    function processField(field, value, line) {
      switch (field) {
        case "event":
          eventType = value || void 0;
          break;
        case "data":
          data = dataLines === 0 ? value : `${data}
${value}`, dataLines++;
          break;
        case "id":
          value.includes("\0") || (id = value);
          break;
        case "retry":
          /^\d+$/.test(value) ? onRetry(parseInt(value, 10)) : onError(
            new ParseError(`Invalid \`retry\` value: "${value}"`, {
              type: "invalid-retry",
              value,
              line
            })
          );
          break;
        default:
          onError(
            new ParseError(
              `Unknown field "${field.length > 20 ? `${field.slice(0, 20)}\u2026` : field}"`,
              { type: "unknown-field", field, value, line }
            )
          );
          break;
      }
    }
    function dispatchEvent() {
      dataLines > 0 && onEvent({
        id,
        event: eventType,
        data
      }), id = void 0, data = "", dataLines = 0, eventType = void 0;
    }
    function reset(options = {}) {
      if (options.consume && pendingFragments.length > 0) {
        const incompleteLine = pendingFragments.join("");
        parseLine(incompleteLine, 0, incompleteLine.length);
      }
      isFirstChunk = true, id = void 0, data = "", dataLines = 0, eventType = void 0, pendingFragments.length = 0, pendingFragmentsLength = 0, terminated = false;
    }
    return { feed, reset };
  }
  function isDataPrefix(chunk, i, firstCharCode) {
    return firstCharCode === 100 && chunk.charCodeAt(i + 1) === 97 && chunk.charCodeAt(i + 2) === 116 && chunk.charCodeAt(i + 3) === 97 && chunk.charCodeAt(i + 4) === 58;
  }
  function isEventPrefix(chunk, i, firstCharCode) {
    return firstCharCode === 101 && chunk.charCodeAt(i + 1) === 118 && chunk.charCodeAt(i + 2) === 101 && chunk.charCodeAt(i + 3) === 110 && chunk.charCodeAt(i + 4) === 116 && chunk.charCodeAt(i + 5) === 58;
  }

  // src/emitter.ts
  var Emitter = class {
    all = /* @__PURE__ */ new Map();
    on(name, fn) {
      const list = this.all.get(name);
      if (list) list.push(fn);
      else this.all.set(name, [fn]);
    }
    /** Removes fn from name's handlers; without fn, all of them (mitt's `off('*')` as the SDK's destroy uses it). */
    off(name, fn) {
      const list = this.all.get(name);
      if (!list) return;
      if (fn === void 0) {
        this.all.delete(name);
        return;
      }
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    }
    clear() {
      this.all.clear();
    }
    emit(name, data) {
      for (const fn of (this.all.get(name) ?? []).slice()) safely(() => fn(data));
      for (const fn of (this.all.get("*") ?? []).slice()) safely(() => fn(name, data));
    }
  };
  function safely(f) {
    try {
      f();
    } catch (e) {
      const report = globalThis.reportError;
      if (typeof report === "function") report(e);
      else console.error("@chatio-gateway/customer-sdk: an event handler threw", e);
    }
  }

  // src/errors.ts
  var GatewayError = class extends Error {
    code;
    type;
    /** The HTTP status (0: the gateway could not be reached). */
    status;
    /** Seconds to wait before trying again, when the gateway said (Retry-After). */
    retryAfter;
    reason;
    error;
    constructor(code, message, opts = {}) {
      super(message);
      this.name = "GatewayError";
      this.code = code;
      this.status = opts.status ?? 0;
      if (opts.type !== void 0) this.type = opts.type;
      if (opts.retryAfter !== void 0) this.retryAfter = opts.retryAfter;
      if (code === "INVALID_ARGS") this.reason = message;
      if (code === "AUTHENTICATION") this.error = message;
    }
  };
  function errorFrom(status, body, retryAfter) {
    const b = body && typeof body === "object" ? body : {};
    const code = typeof b.code === "string" ? b.code : status === 401 ? "AUTHENTICATION" : "REQUEST_FAILED";
    const message = typeof b.message === "string" ? b.message : `HTTP ${status}`;
    const opts = { status };
    if (typeof b.type === "string") opts.type = b.type;
    const ra = Number(retryAfter);
    if (retryAfter !== null && Number.isFinite(ra) && ra >= 0) opts.retryAfter = ra;
    return new GatewayError(code, message, opts);
  }

  // src/upload.ts
  var SLICE = 64 << 10;
  async function upload(req) {
    if (typeof XMLHttpRequest === "function") return viaXHR(req);
    return viaFetch(req);
  }
  function viaXHR(req) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const onAbort = () => xhr.abort();
      req.signal.addEventListener("abort", onAbort, { once: true });
      const done = () => req.signal.removeEventListener("abort", onAbort);
      if (req.onProgress) {
        const cb = req.onProgress;
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable && e.total > 0) cb(e.loaded / e.total);
        };
      }
      xhr.onload = () => {
        done();
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(errorFrom(xhr.status, body, xhr.getResponseHeader("Retry-After")));
      };
      xhr.onerror = () => {
        done();
        reject(new GatewayError("CONNECTION_LOST", "the gateway cannot be reached"));
      };
      xhr.onabort = () => {
        done();
        reject(new GatewayError("CANCELLED", "the upload was cancelled"));
      };
      xhr.open("POST", req.url);
      for (const [k, v] of Object.entries(req.headers)) xhr.setRequestHeader(k, v);
      xhr.send(req.form);
    });
  }
  async function viaFetch(req) {
    const encoded = new Response(req.form);
    const type = encoded.headers.get("Content-Type") ?? "multipart/form-data";
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    const total = bytes.length;
    let sent = 0;
    const cb = req.onProgress;
    const body = new ReadableStream({
      pull(ctl) {
        if (sent >= total) {
          ctl.close();
          return;
        }
        const n = Math.min(SLICE, total - sent);
        ctl.enqueue(bytes.subarray(sent, sent + n));
        sent += n;
        if (cb) cb(sent / total);
      }
    });
    let res;
    try {
      res = await req.fetch(req.url, {
        method: "POST",
        headers: { ...req.headers, "Content-Type": type, "Content-Length": String(total) },
        body,
        signal: req.signal,
        // Node's fetch needs it for a stream body.
        duplex: "half"
      });
    } catch (e) {
      if (req.signal.aborted) throw new GatewayError("CANCELLED", "the upload was cancelled");
      throw new GatewayError("CONNECTION_LOST", "the gateway cannot be reached: " + String(e));
    }
    let out = null;
    try {
      out = await res.json();
    } catch {
    }
    if (!res.ok) throw errorFrom(res.status, out, res.headers.get("Retry-After"));
    return out;
  }

  // src/index.ts
  var $$observable = typeof Symbol === "function" && Symbol.observable || "@@observable";
  var MAX_FILE = 10 * 1024 * 1024;
  var SNEAK_PEEK_INTERVAL = 2e3;
  var BACKOFF_MIN = 250;
  var BACKOFF_MAX = 3e4;
  var STREAM_IDLE = 45e3;
  function init(config) {
    if (!config || typeof config !== "object") throw new TypeError("init: expected {gatewayUrl, auth}");
    const { auth } = config;
    if (!auth || typeof auth.getToken !== "function" || typeof auth.getFreshToken !== "function") {
      throw new TypeError("init: auth must have getToken() and getFreshToken()");
    }
    let base;
    try {
      base = new URL(config.gatewayUrl);
    } catch {
      throw new TypeError("init: gatewayUrl must be an absolute http(s) URL");
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError("init: gatewayUrl must be http(s)");
    return new Instance(config, base.href.replace(/\/+$/, ""));
  }
  var sdk = { init };
  var index_default = sdk;
  var Instance = class {
    auth;
    instanceId = randomId();
    url;
    fetch;
    onError;
    idleTimeout;
    emitter = new Emitter();
    calls = new AbortController();
    // aborted by disconnect: every call made after is refused
    stopped = false;
    // disconnect() or destroy()
    ended = false;
    // the gateway ended the session (disconnected): no resuming
    lastWasDisconnected = false;
    // the stream's last event was "disconnected"
    // The stream.
    streamAbort = null;
    lastId = "";
    lastSeq = -1;
    retryMs = 1e3;
    // the gateway's retry: hint
    attempt = 0;
    timer;
    customerId;
    connectedOnce = false;
    lost = false;
    // between connection_lost and connection_restored
    restoring = 0;
    // generation of the summary fetch after a resume
    // setSneakPeek's throttle, per chat.
    peeks = /* @__PURE__ */ new Map();
    constructor(config, url) {
      this.auth = config.auth;
      this.url = url;
      this.fetch = config.fetch ?? globalThis.fetch.bind(globalThis);
      this.onError = config.onError;
      this.idleTimeout = config.idleTimeout && config.idleTimeout > 0 ? config.idleTimeout : STREAM_IDLE;
      this.auth.getToken().then(
        (t) => this.emitCustomerId(t.entityId),
        () => {
        }
      );
      queueMicrotask(() => void this.openStream(false));
    }
    // ---- REST ----
    async headers(token) {
      const t = token ?? await this.auth.getToken();
      const h = {
        Authorization: "Bearer " + t.accessToken,
        "X-Client-Instance": this.instanceId
      };
      if (validCustomerId(t.entityId)) h["X-Customer-Id"] = t.entityId;
      return h;
    }
    async call(method, path, body) {
      if (this.calls.signal.aborted) throw new GatewayError("CONNECTION_LOST", "the instance is disconnected");
      const headers = await this.headers();
      const init2 = { method, headers, cache: "no-store", credentials: "omit", signal: this.calls.signal };
      if (body !== void 0) {
        headers["Content-Type"] = "application/json";
        init2.body = JSON.stringify(body);
      }
      let res;
      try {
        res = await this.fetch(this.url + path, init2);
      } catch (e) {
        throw new GatewayError("CONNECTION_LOST", this.calls.signal.aborted ? "the instance is disconnected" : "the gateway cannot be reached");
      }
      let data = null;
      if (res.status !== 204) {
        const text = await res.text().catch(() => "");
        if (text) {
          try {
            data = JSON.parse(text);
          } catch {
            data = null;
          }
        }
      }
      if (!res.ok) throw errorFrom(res.status, data, res.headers.get("Retry-After"));
      return data;
    }
    startChat(data = {}) {
      return this.call("POST", "/v1/chats", data);
    }
    getChatsSummary(pagination = {}) {
      const { offset = 0, limit = 10 } = pagination;
      return this.call("GET", `/v1/chats?offset=${num(offset)}&limit=${num(limit)}`);
    }
    getChatThreads(chat, threads) {
      const ids = (Array.isArray(threads) ? threads : []).map(String).join(",");
      return this.call("GET", `${chatPath(chat)}/threads?ids=${encodeURIComponent(ids)}`);
    }
    getChatThreadsSummary(chat, pagination = {}) {
      const { offset = 0, limit = 25 } = pagination;
      return this.call("GET", `${chatPath(chat)}/threads-summary?offset=${num(offset)}&limit=${num(limit)}`);
    }
    getChatHistory(chat) {
      let cursor = "";
      let done = false;
      let queue = Promise.resolve();
      const page = async () => {
        if (done) return { done: true };
        const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
        const p = await this.call("GET", `${chatPath(chat)}/history${q}`);
        cursor = p.cursor ?? "";
        done = !!p.done || !cursor;
        return { value: p.events, done };
      };
      const it = {
        // One page at a time, in call order (the SDK queues them too).
        next: () => {
          const r = queue.then(page, page);
          queue = r.catch(() => {
          });
          return r;
        },
        [Symbol.asyncIterator]: () => it
      };
      it["@@asyncIterator"] = () => it;
      return it;
    }
    sendEvent(chat, event) {
      return this.call("POST", `${chatPath(chat)}/events`, event);
    }
    sendMessage(chat, message) {
      return this.sendEvent(chat, { ...message, type: "message" });
    }
    sendFile(chat, data, spec = {}) {
      const ctl = new AbortController();
      let cancelled = false;
      const send = (async () => {
        const file = data && data.file;
        if (!file || typeof file.size !== "number") {
          throw new GatewayError("INVALID_ARGS", "You need to specify the file.");
        }
        if (file.size > MAX_FILE) throw new GatewayError("INVALID_ARGS", "The file is too big (max size is 10.00 MB).");
        if (this.calls.signal.aborted) throw new GatewayError("CONNECTION_LOST", "the instance is disconnected");
        const headers = await this.headers();
        if (cancelled) throw new GatewayError("CANCELLED", "the upload was cancelled");
        const form = new FormData();
        if (data.customId !== void 0) form.append("customId", String(data.customId));
        const name = file.name;
        form.append("file", file, typeof name === "string" && name ? name : "file");
        const stop = () => ctl.abort();
        this.calls.signal.addEventListener("abort", stop, { once: true });
        try {
          return await upload({
            url: `${this.url}${chatPath(chat)}/files`,
            headers,
            form,
            onProgress: spec && typeof spec.onProgress === "function" ? spec.onProgress : void 0,
            signal: ctl.signal,
            fetch: this.fetch
          });
        } finally {
          this.calls.signal.removeEventListener("abort", stop);
        }
      })();
      return {
        then: (ok, fail) => send.then(ok, fail),
        catch: (fail) => send.catch(fail),
        cancel: () => {
          if (cancelled) return;
          cancelled = true;
          ctl.abort();
        }
      };
    }
    sendRating(chat, rating) {
      return this.call("POST", `${chatPath(chat)}/rating`, rating);
    }
    // The SDK throttles it (2 s, latest text trailing) and resolves nothing;
    // the gateway throttles it upstream again.
    setSneakPeek(chat, text) {
      const key = String(chat);
      let p = this.peeks.get(key);
      if (!p) {
        p = { last: 0, text: null, timer: void 0 };
        this.peeks.set(key, p);
      }
      const state = p;
      const fire = (t) => {
        state.last = Date.now();
        state.text = null;
        this.call("PUT", `${chatPath(key)}/sneak-peek`, { text: t }).catch(() => {
        });
      };
      const wait = state.last + SNEAK_PEEK_INTERVAL - Date.now();
      if (wait <= 0 && state.timer === void 0) {
        fire(String(text));
        return;
      }
      state.text = String(text);
      if (state.timer === void 0) {
        state.timer = setTimeout(() => {
          state.timer = void 0;
          if (state.text !== null && !this.stopped) fire(state.text);
        }, Math.max(wait, 0));
      }
    }
    closeThread(chat) {
      return this.call("POST", `${chatPath(chat)}/close-thread`);
    }
    updateChatProperties(chat, properties) {
      return this.call("PATCH", `${chatPath(chat)}/properties`, properties);
    }
    updateChatThreadProperties(chat, thread, properties) {
      return this.call("PATCH", `${chatPath(chat)}/threads/${encodeURIComponent(thread)}/properties`, properties);
    }
    updateCustomer(properties) {
      return this.call("PATCH", "/v1/customer", properties);
    }
    updateLastSeenTimestamp(chat, timestamp) {
      return this.call("POST", `${chatPath(chat)}/last-seen`, timestamp === void 0 ? {} : { timestamp });
    }
    disconnect() {
      if (this.stopped) return;
      this.stopped = true;
      this.closeStream();
      this.calls.abort();
      for (const p of this.peeks.values()) clearTimeout(p.timer);
      this.peeks.clear();
      if (this.connectedOnce && !this.lost) {
        this.lost = true;
        this.emitter.emit("connection_lost", void 0);
      }
    }
    destroy() {
      this.emitter.clear();
      this.disconnect();
    }
    async endSession() {
      await this.call("DELETE", "/v1/session");
    }
    on(name, handler) {
      this.emitter.on(name, handler);
    }
    off(name, handler) {
      this.emitter.off(name, handler);
    }
    // ---- the stream ----
    closeStream() {
      clearTimeout(this.timer);
      this.timer = void 0;
      this.streamAbort?.abort();
      this.streamAbort = null;
    }
    /** openStream opens (or resumes) the stream; fresh: the token is getFreshToken's (once after a 401). */
    async openStream(fresh) {
      if (this.stopped || this.ended) return;
      const ctl = new AbortController();
      this.streamAbort = ctl;
      let res;
      try {
        const token = fresh ? await this.auth.getFreshToken() : await this.auth.getToken();
        if (ctl.signal.aborted) return;
        const headers = await this.headers(token);
        headers.Accept = "text/event-stream";
        if (this.lastId) headers["Last-Event-ID"] = this.lastId;
        res = await this.fetch(this.url + "/v1/events", { headers, cache: "no-store", credentials: "omit", signal: ctl.signal });
      } catch {
        if (ctl.signal.aborted) return;
        return this.streamCut(ctl);
      }
      if (res.status === 401 && !fresh) {
        void res.body?.cancel().catch(() => {
        });
        return this.openStream(true);
      }
      if (!res.ok) {
        let body = null;
        try {
          body = await res.json();
        } catch {
        }
        const err = errorFrom(res.status, body, res.headers.get("Retry-After"));
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
        this.ended = true;
        this.streamAbort = null;
        return;
      }
      this.streamCut(ctl);
    }
    giveUp(err) {
      this.closeStream();
      if (this.onError) this.onError(err);
    }
    async read(res, ctl) {
      if (!res.body) return;
      const parser = createParser({
        onEvent: (m) => this.onMessage(m),
        onRetry: (ms) => {
          if (ms > 0) this.retryMs = ms;
        }
      });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let idle;
      const watch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => void reader.cancel().catch(() => {
        }), this.idleTimeout);
      };
      try {
        watch();
        for (; ; ) {
          const { value, done } = await reader.read();
          if (done || ctl.signal.aborted) break;
          watch();
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch {
      } finally {
        clearTimeout(idle);
        reader.releaseLock();
      }
    }
    /** streamCut: the stream ended or could not open; try again after a while. */
    streamCut(ctl, retryAfter) {
      if (this.stopped || this.ended || this.streamAbort !== ctl) return;
      this.streamAbort = null;
      if (this.connectedOnce && !this.lost) {
        this.lost = true;
        this.emitter.emit("connection_lost", void 0);
      }
      const n = this.attempt++;
      let delay = n === 0 ? this.retryMs : Math.min(BACKOFF_MAX, Math.max(this.retryMs, BACKOFF_MIN) * 2 ** n) * (0.5 + Math.random() / 2);
      if (retryAfter !== void 0) delay = Math.max(delay, retryAfter * 1e3);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = void 0;
        void this.openStream(false);
      }, delay);
    }
    /** restore ends a connection_lost of ours once the resumed stream is open: with the current summary, as the SDK's reconnect does. */
    async restore(ctl) {
      const gen = ++this.restoring;
      let page;
      try {
        page = await this.getChatsSummary();
      } catch {
        return;
      }
      if (gen !== this.restoring || ctl.signal.aborted || !this.lost || this.stopped) return;
      this.lost = false;
      this.emitter.emit("connection_restored", page);
    }
    onMessage(m) {
      const name = m.event || "message";
      if (m.id) {
        const seq = Number(m.id);
        if (Number.isSafeInteger(seq)) {
          if (seq <= this.lastSeq) return;
          this.lastSeq = seq;
        }
        this.lastId = m.id;
      }
      this.lastWasDisconnected = name === "disconnected";
      let data = void 0;
      if (m.data !== "") {
        try {
          data = JSON.parse(m.data);
        } catch {
          return;
        }
      }
      switch (name) {
        case "customer_id":
          this.emitCustomerId(String(data));
          return;
        case "connected":
          this.restoring++;
          if (!this.connectedOnce) {
            this.connectedOnce = true;
            this.lost = false;
            this.emitter.emit("connected", data);
            return;
          }
          this.lost = false;
          this.emitter.emit("connection_restored", data);
          return;
        case "connection_lost":
          if (this.lost) return;
          this.lost = true;
          this.emitter.emit("connection_lost", void 0);
          return;
        case "connection_restored":
          this.restoring++;
          if (!this.lost && this.connectedOnce) return;
          this.lost = false;
          this.emitter.emit("connection_restored", data);
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
    emitCustomerId(id) {
      if (!id || this.customerId !== void 0) return;
      this.customerId = id;
      this.emitter.emit("customer_id", id);
    }
    // ---- $$observable ----
    "@@observable"() {
      return this.observable();
    }
    observable() {
      return {
        subscribe: (observer) => {
          if (!observer || typeof observer !== "object") throw new TypeError("Expected the observer to be an object.");
          const fn = (name, data) => {
            if (typeof observer.next === "function") observer.next([name, data]);
          };
          this.emitter.on("*", fn);
          return () => this.emitter.off("*", fn);
        }
      };
    }
  };
  var proto = Instance.prototype;
  if (typeof $$observable === "symbol") proto[$$observable] = proto["@@observable"];
  function chatPath(chat) {
    return "/v1/chats/" + encodeURIComponent(String(chat));
  }
  function num(v) {
    return encodeURIComponent(String(v));
  }
  function validCustomerId(id) {
    return typeof id === "string" && id !== "" && new TextEncoder().encode(id).length <= 128 && !/[\u0000-\u001f\u007f-\u009f]/.test(id);
  }
  function randomId() {
    const b = new Uint8Array(16);
    globalThis.crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  return __toCommonJS(index_exports);
})();
ChatioGatewaySDK = Object.assign(ChatioGatewaySDK.default, ChatioGatewaySDK);
