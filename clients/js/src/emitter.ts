// on / off as the SDK's (mitt 1): handlers by event name, "*" for every
// event (called with the name and the data).

export type Handler = (data: any) => void;
export type WildcardHandler = (name: string, data: any) => void;

export class Emitter {
  private readonly all = new Map<string, Array<Handler | WildcardHandler>>();

  on(name: string, fn: Handler | WildcardHandler): void {
    const list = this.all.get(name);
    if (list) list.push(fn);
    else this.all.set(name, [fn]);
  }

  /** Removes fn from name's handlers; without fn, all of them (mitt's `off('*')` as the SDK's destroy uses it). */
  off(name: string, fn?: Handler | WildcardHandler): void {
    const list = this.all.get(name);
    if (!list) return;
    if (fn === undefined) {
      this.all.delete(name);
      return;
    }
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  }

  clear(): void {
    this.all.clear();
  }

  emit(name: string, data: unknown): void {
    for (const fn of (this.all.get(name) ?? []).slice()) safely(() => (fn as Handler)(data));
    for (const fn of (this.all.get('*') ?? []).slice()) safely(() => (fn as WildcardHandler)(name, data));
  }
}

// A handler that throws does not stop the others or the stream.
function safely(f: () => void): void {
  try {
    f();
  } catch (e) {
    const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (typeof report === 'function') report(e);
    else console.error('@chatio-gateway/customer-sdk: an event handler threw', e);
  }
}
