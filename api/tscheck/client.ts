// A browser client of the gateway written only against the types that
// openapi-typescript generates from api/openapi.yaml
// (scripts/check-spec-types.sh generates them into generated/ and compiles
// this file with tsc --strict). It is what a customer-facing web app would
// write: REST calls through fetch, the event stream through EventSource,
// errors with their Retry-After. When the spec types something so that
// such a client cannot be written (a property map typed as
// Record<string, never>, a custom event forced to one literal type), this
// file stops compiling.

import type { components, paths } from "./generated/openapi";

type Schemas = components["schemas"];

export type Chat = Schemas["Chat"];
export type ChatSummary = Schemas["ChatSummary"];
export type ChatEvent = Schemas["Event"];
export type StreamMessage = Schemas["StreamMessage"];

// The bodies and answers of the operations used below, taken from paths so
// that the operations' shapes are held too, not only the schemas'.
type SendEventBody = paths["/v1/chats/{chat}/events"]["post"]["requestBody"]["content"]["application/json"];
type SendEventAnswer = paths["/v1/chats/{chat}/events"]["post"]["responses"][201]["content"]["application/json"];
type StartChatBody = NonNullable<paths["/v1/chats"]["post"]["requestBody"]>["content"]["application/json"];
type StartChatAnswer = paths["/v1/chats"]["post"]["responses"][201]["content"]["application/json"];
type SummaryQuery = NonNullable<paths["/v1/chats"]["get"]["parameters"]["query"]>;
type SummaryAnswer = paths["/v1/chats"]["get"]["responses"][200]["content"]["application/json"];
type PropertiesBody = paths["/v1/chats/{chat}/properties"]["patch"]["requestBody"]["content"]["application/json"];
type HistoryAnswer = paths["/v1/chats/{chat}/history"]["get"]["responses"][200]["content"]["application/json"];
type SessionAnswer = paths["/v1/session"]["get"]["responses"][200]["content"]["application/json"];
type TicketAnswer = paths["/v1/tickets"]["post"]["responses"][200]["content"]["application/json"];
type FileAnswer = paths["/v1/chats/{chat}/files"]["post"]["responses"][201]["content"]["application/json"];
type CustomerIdHeader = NonNullable<paths["/v1/session"]["get"]["parameters"]["header"]>["X-Customer-Id"];

// The error answers: the body, and the Retry-After header the spec declares
// on 429 and 503.
type ErrorBody = Schemas["Error"];
type ErrorCode = ErrorBody["code"];
type RateLimited = paths["/v1/chats/{chat}/messages"]["post"]["responses"][429];
type RetryAfter429 = RateLimited["headers"]["Retry-After"];
type RetryAfter503 = paths["/v1/events"]["get"]["responses"][503]["headers"]["Retry-After"];

/** A refusal of the gateway, with what a client needs to act on it. */
export class GatewayError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly type: string | undefined;
  /** Seconds to wait before retrying, when the gateway said. */
  readonly retryAfter: RetryAfter429 | RetryAfter503 | undefined;

  constructor(status: number, body: ErrorBody, retryAfter: number | undefined) {
    super(`${status} ${body.code}: ${body.message}`);
    this.status = status;
    this.code = body.code;
    this.type = body.type;
    this.retryAfter = retryAfter;
  }

  /** Milliseconds to wait before the same call: Retry-After, else 1 s. */
  get retryInMs(): number {
    return (this.retryAfter ?? 1) * 1000;
  }

  /** Whether the same call may succeed later (after retryInMs). */
  get retryable(): boolean {
    switch (this.code) {
      case "OVERLOADED":
      case "CONNECTION_LOST":
      case "TIMEOUT":
        return true;
      case "REQUEST_FAILED":
        return this.type === "too_many_requests";
      case "INVALID_ARGS":
      case "AUTHENTICATION":
      case "INTERNAL":
        return false;
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const errorCodes: readonly ErrorCode[] = [
  "INVALID_ARGS",
  "AUTHENTICATION",
  "REQUEST_FAILED",
  "CONNECTION_LOST",
  "TIMEOUT",
  "OVERLOADED",
  "INTERNAL",
];

function isErrorBody(v: unknown): v is ErrorBody {
  return (
    isRecord(v) &&
    typeof v["message"] === "string" &&
    errorCodes.some((c) => c === v["code"]) &&
    (v["type"] === undefined || typeof v["type"] === "string")
  );
}

export class ChatClient {
  readonly #base: string;
  readonly #token: string;
  readonly #customerId: CustomerIdHeader;

  constructor(base: string, token: string, customerId?: string) {
    this.#base = base.replace(/\/+$/, "");
    this.#token = token;
    this.#customerId = customerId;
  }

  #headers(json: boolean): Headers {
    const h = new Headers({ Authorization: `Bearer ${this.#token}` });
    if (this.#customerId !== undefined) {
      h.set("X-Customer-Id", this.#customerId);
    }
    if (json) {
      h.set("Content-Type", "application/json");
    }
    return h;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method, headers: this.#headers(body !== undefined) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    return this.#answer<T>(await fetch(this.#base + path, init));
  }

  async #answer<T>(res: Response): Promise<T> {
    if (res.status === 204) {
      return undefined as T;
    }
    const json: unknown = await res.json();
    if (!res.ok) {
      const header = res.headers.get("Retry-After");
      const retry = header === null ? undefined : Number.parseInt(header, 10);
      const body: ErrorBody = isErrorBody(json)
        ? json
        : { code: "INTERNAL", message: `unexpected answer ${res.status}` };
      throw new GatewayError(res.status, body, Number.isNaN(retry) ? undefined : retry);
    }
    return json as T;
  }

  session(): Promise<SessionAnswer> {
    return this.#call("GET", "/v1/session");
  }

  startChat(body: StartChatBody): Promise<StartChatAnswer> {
    return this.#call("POST", "/v1/chats", body);
  }

  chatsSummary(q: SummaryQuery = {}): Promise<SummaryAnswer> {
    const p = new URLSearchParams();
    if (q.offset !== undefined) p.set("offset", String(q.offset));
    if (q.limit !== undefined) p.set("limit", String(q.limit));
    return this.#call("GET", `/v1/chats?${p}`);
  }

  sendEvent(chat: string, event: SendEventBody): Promise<SendEventAnswer> {
    return this.#call("POST", `/v1/chats/${encodeURIComponent(chat)}/events`, event);
  }

  updateChatProperties(chat: string, properties: PropertiesBody): Promise<Schemas["Success"]> {
    return this.#call("PATCH", `/v1/chats/${encodeURIComponent(chat)}/properties`, properties);
  }

  /** The file part first, customId after it, as curl -F does. */
  async sendFile(chat: string, file: Blob, name: string, customId?: string): Promise<FileAnswer> {
    const form = new FormData();
    form.append("file", file, name);
    if (customId !== undefined) {
      form.append("customId", customId);
    }
    const res = await fetch(`${this.#base}/v1/chats/${encodeURIComponent(chat)}/files`, {
      method: "POST",
      headers: this.#headers(false),
      body: form,
    });
    return this.#answer<FileAnswer>(res);
  }

  /** Every event of the chat, newest page first, as getChatHistory pages. */
  async *history(chat: string): AsyncGenerator<ChatEvent[]> {
    let cursor: string | undefined;
    do {
      const q = cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`;
      const page: HistoryAnswer = await this.#call("GET", `/v1/chats/${encodeURIComponent(chat)}/history${q}`);
      yield page.events;
      // The cursor is there exactly when the history goes on.
      cursor = page.done ? undefined : page.cursor;
    } while (cursor !== undefined);
  }

  /** Opens the event stream with a ticket (EventSource sends no headers). */
  async stream(onMessage: (m: StreamMessage) => void): Promise<EventSource> {
    const t: TicketAnswer = await this.#call("POST", "/v1/tickets");
    const es = new EventSource(`${this.#base}/v1/events?ticket=${encodeURIComponent(t.ticket)}`);
    for (const name of streamEvents) {
      es.addEventListener(name, (e: MessageEvent<string>) => {
        onMessage({ id: e.lastEventId || undefined, event: name, data: JSON.parse(e.data) } as StreamMessage);
      });
    }
    return es;
  }
}

// ---- reading what the gateway answers ----

/** A chat's or summary's properties of a namespace, when it is an object. */
export function namespace(props: Schemas["Properties"] | null, ns: string): Record<string, unknown> | undefined {
  if (props === null) {
    return undefined;
  }
  const v = props[ns];
  return isRecord(v) ? v : undefined;
}

/** The page a chat was started from ({"source": {"page": …}}), if any. */
export function sourcePage(chat: Chat | ChatSummary): string | undefined {
  const page = namespace(chat.properties, "source")?.["page"];
  return typeof page === "string" ? page : undefined;
}

export function isPinned(chat: Chat): boolean {
  return namespace(chat.properties, "routing")?.["pinned"] === true;
}

export function isMessage(e: ChatEvent): e is Schemas["MessageEvent"] {
  return e.type === "message";
}

export function isFile(e: ChatEvent): e is Schemas["FileEvent"] {
  return e.type === "file";
}

/** One line of a chat transcript. */
export function describe(e: ChatEvent): string {
  if (isMessage(e)) {
    return `${e.author}: ${e.text}`;
  }
  if (isFile(e)) {
    const size = e.width !== undefined && e.height !== undefined ? ` ${e.width}x${e.height}` : "";
    return `${e.author} sent ${e.contentType}${size}: ${e.url}`;
  }
  // Any other type: its own fields, as chat.io keeps them.
  const template = e["template_id"];
  return `${e.author} sent a ${e.type}${typeof template === "string" ? ` (${template})` : ""}`;
}

// The stream's named events: the messages whose event is a literal (any
// other name, typed string, is an upstream push passed on as is).
type Named<M> = M extends { event: infer E } ? (string extends E ? never : M) : never;
type KnownMessage = Named<StreamMessage>;
const streamEvents = [
  "customer_id",
  "connected",
  "connection_lost",
  "connection_restored",
  "disconnected",
  "user_data",
  "new_event",
  "thread_summary",
  "user_is_typing",
  "user_stopped_typing",
  "user_joined_chat",
  "user_left_chat",
  "chat_properties_updated",
  "chat_thread_properties_updated",
  "last_seen_timestamp_updated",
  "thread_closed",
] as const satisfies readonly KnownMessage["event"][];

function isKnown(m: StreamMessage): m is KnownMessage {
  return (streamEvents as readonly string[]).includes(m.event);
}

/** A chat widget's state, kept from the stream. */
export class ChatView {
  customerId: string | undefined;
  readonly chats = new Map<string, ChatSummary>();
  readonly transcript = new Map<string, string[]>();
  readonly typing = new Set<string>();
  online = false;
  /** The last id seen, for Last-Event-ID. */
  lastEventId: string | undefined;

  apply(m: StreamMessage): void {
    if (m.id !== undefined) {
      this.lastEventId = m.id;
    }
    if (!isKnown(m)) {
      return; // a push this widget does not know
    }
    switch (m.event) {
      case "customer_id":
        this.customerId = m.data;
        break;
      case "connected":
      case "connection_restored":
        this.online = true;
        this.chats.clear();
        for (const c of m.data.chatsSummary) {
          this.chats.set(c.id, c);
        }
        break;
      case "connection_lost":
        this.online = false;
        break;
      case "disconnected":
        this.online = false;
        console.log("disconnected:", m.data.reason ?? "(no reason)");
        break;
      case "new_event": {
        const lines = this.transcript.get(m.data.chat) ?? [];
        lines.push(describe(m.data.event));
        this.transcript.set(m.data.chat, lines);
        break;
      }
      case "user_is_typing":
        this.typing.add(`${m.data.chat}/${m.data.user}`);
        break;
      case "user_stopped_typing":
        this.typing.delete(`${m.data.chat}/${m.data.user}`);
        break;
      case "chat_properties_updated": {
        const c = this.chats.get(m.data.chat);
        if (c !== undefined) {
          c.properties = { ...c.properties, ...m.data.properties };
        }
        break;
      }
      case "chat_thread_properties_updated":
        console.log("thread", m.data.thread, "properties", Object.keys(m.data.properties));
        break;
      case "last_seen_timestamp_updated": {
        const c = this.chats.get(m.data.chat);
        if (c !== undefined) {
          c.lastSeenTimestamps[m.data.user] = m.data.timestamp;
        }
        break;
      }
      case "user_data":
        if (m.data.type === "agent") {
          console.log("agent", m.data.name ?? m.data.id);
        } else {
          console.log("customer", m.data.id, Object.keys(m.data.fields));
        }
        break;
      case "thread_summary":
      case "user_joined_chat":
      case "user_left_chat":
      case "thread_closed":
        break;
      default: {
        const never: never = m;
        throw new Error(`unhandled ${JSON.stringify(never)}`);
      }
    }
  }
}

// ---- a session of the widget ----

export async function demo(base: string, token: string, customerId: string): Promise<void> {
  const client = new ChatClient(base, token, customerId);
  const view = new ChatView();
  const es = await client.stream((m) => view.apply(m));

  const chat = await client.startChat({
    events: [{ type: "message", text: "Hello, my order is late", customId: "m-1" }],
    properties: { source: { page: "https://shop.example/orders/1" } },
  });
  console.log("started", chat.id, "from", sourcePage(chat), "pinned:", isPinned(chat));

  // A custom event: a type of its own with fields of its own.
  const sent = await client.sendEvent(chat.id, {
    type: "rich_message",
    customId: "card-1",
    template_id: "quick_replies",
    elements: [{ title: "Track my order", buttons: [{ type: "message", value: "track" }] }],
  });
  console.log(describe(sent));
  if (!isMessage(sent) && !isFile(sent)) {
    const elements = sent["elements"];
    console.log("stored with", Array.isArray(elements) ? elements.length : 0, "elements");
  }

  await client.updateChatProperties(chat.id, { routing: { pinned: true }, tags: ["late", "order"] });

  const page = await client.chatsSummary({ offset: 0, limit: 10 });
  for (const s of page.chatsSummary) {
    const last = s.lastEvent === undefined ? "" : describe(s.lastEvent);
    console.log(s.id, sourcePage(s) ?? "-", last, Object.keys(namespace(s.properties, "routing") ?? {}));
  }

  for await (const events of client.history(chat.id)) {
    console.log(events.map(describe).join("\n"));
  }

  await client.sendFile(chat.id, new Blob(["receipt"], { type: "text/plain" }), "receipt.txt", "f-1");

  try {
    await client.session();
  } catch (e) {
    if (e instanceof GatewayError && e.retryable) {
      await new Promise((resolve) => setTimeout(resolve, e.retryInMs));
      console.log("session", await client.session());
    } else {
      throw e;
    }
  }
  es.close();
}
