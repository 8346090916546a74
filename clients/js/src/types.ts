// The SDK 0.9.1's values, as the gateway answers them (api/openapi.yaml).

/** What `auth.getToken()` / `getFreshToken()` resolve (`@livechat/chat.io-customer-auth`). */
export interface Token {
  accessToken: string;
  /** The customer's id: emitted as `customer_id`, sent as `X-Customer-Id`. */
  entityId: string;
  tokenType?: string;
  expiresIn?: number;
  creationDate?: number;
  [key: string]: unknown;
}

/** The SDK's auth object: the one from `@livechat/chat.io-customer-auth` works unchanged. */
export interface Auth {
  getToken(): Promise<Token>;
  getFreshToken(): Promise<Token>;
  hasToken?(): Promise<boolean>;
  invalidate?(): Promise<unknown>;
}

export type Properties = Record<string, Record<string, unknown>>;

export interface Customer {
  id: string;
  type: 'customer';
  name?: string;
  email?: string;
  fields?: Record<string, string>;
  [key: string]: unknown;
}

export interface Agent {
  id: string;
  type: 'agent';
  name?: string;
  avatar?: string;
  jobTitle?: string;
  [key: string]: unknown;
}

export type User = Customer | Agent;

/** A chat event as the SDK resolves and emits it. */
export interface ChatEvent {
  id: string;
  type: string;
  author: string;
  timestamp: number | null;
  thread: string;
  customId?: string;
  text?: string;
  url?: string;
  contentType?: string;
  width?: number;
  height?: number;
  properties?: Properties;
  [key: string]: unknown;
}

export interface Thread {
  id: string;
  chat: string;
  active: boolean;
  order: number;
  users: string[];
  events: ChatEvent[];
  properties?: Properties;
  [key: string]: unknown;
}

export interface Chat {
  id: string;
  users: User[];
  threads: string[];
  properties?: Properties;
  [key: string]: unknown;
}

export interface ChatSummary {
  id: string;
  order?: number;
  /** The users' ids (their data comes as user_data events). */
  users: string[];
  lastEvent?: ChatEvent;
  lastEventsPerType?: Record<string, ChatEvent>;
  lastSeenTimestamps?: Record<string, number | null>;
  properties?: Properties;
  [key: string]: unknown;
}

export interface ChatsSummaryPage {
  chatsSummary: ChatSummary[];
  totalChats: number;
}

export interface ThreadSummary {
  id: string;
  order: number;
  totalEvents: number;
  [key: string]: unknown;
}

/** The thread_summary event's data: a ThreadSummary with its chat. */
export interface ThreadSummaryEvent extends ThreadSummary {
  chat: string;
}

export interface ThreadsSummaryPage {
  threadsSummary: ThreadSummary[];
  totalThreads: number;
}

export interface Success {
  success: true;
}

/** The events an instance emits, by name, with their data. */
export interface EventMap {
  customer_id: string;
  connected: ChatsSummaryPage;
  connection_lost: undefined;
  connection_restored: ChatsSummaryPage;
  disconnected: { reason?: string; [key: string]: unknown } | null;
  user_data: User;
  new_event: { chat: string; event: ChatEvent };
  thread_summary: ThreadSummaryEvent;
  user_is_typing: { chat: string; user: string };
  user_stopped_typing: { chat: string; user: string };
  user_joined_chat: { chat: string; user: string; [key: string]: unknown };
  user_left_chat: { chat: string; user: string; [key: string]: unknown };
  chat_properties_updated: { chat: string; properties: Properties };
  chat_thread_properties_updated: { chat: string; thread: string; properties?: Properties };
  last_seen_timestamp_updated: { chat: string; user: string; timestamp: number | null };
  thread_closed: { chat: string; [key: string]: unknown };
}

export type EventName = keyof EventMap;

export interface StartChatData {
  events?: Array<Record<string, unknown>>;
  properties?: Properties;
  scope?: Record<string, unknown>;
}

export interface Pagination {
  offset?: number;
  limit?: number;
}

export interface MessageData {
  text: string;
  customId?: string;
  [key: string]: unknown;
}

export interface FileData {
  /** A `File` or `Blob` (a `Blob` is sent as "file"). */
  file: Blob;
  customId?: string;
}

export interface SendFileSpec {
  /** Upload progress, from 0 to 1 (the SDK's `@livechat/file-upload` spec). */
  onProgress?: (progress: number) => void;
}

export interface Rating {
  value: 'good' | 'bad';
  comment?: string;
}

/** `getChatHistory(chat)`: one page of events per `next()`, newest page first. */
export interface HistoryIterator {
  next(): Promise<{ value: ChatEvent[]; done: boolean } | { value?: undefined; done: true }>;
  [Symbol.asyncIterator](): HistoryIterator;
}

/** sendFile's answer: a promise with `cancel()`, as the SDK's. */
export interface Upload extends PromiseLike<{ url: string }> {
  catch<T = never>(onRejected?: ((reason: unknown) => T | PromiseLike<T>) | null): Promise<{ url: string } | T>;
  cancel(): void;
}
