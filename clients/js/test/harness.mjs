// The real thing for the node:test suites: a chat.io simulator (cmd/chatio-sim,
// its demo bot off: the tests act as the agent through its control API)
// and a gateway (cmd/gateway, on its embedded engine with a data dir of its
// own) in front of it, both child processes on 127.0.0.1; for the oracle
// test, a scenario upstream (test/upstream) instead of the simulator. The
// binaries are GATEWAY_BIN, CHATIO_SIM_BIN and UPSTREAM_BIN when set (the
// test command builds them), else built here with `go build` into a
// temporary directory.

import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');

let bins;
function binaries() {
  if (bins) return bins;
  if (process.env.GATEWAY_BIN && process.env.CHATIO_SIM_BIN && process.env.UPSTREAM_BIN) {
    bins = { gateway: process.env.GATEWAY_BIN, sim: process.env.CHATIO_SIM_BIN, upstream: process.env.UPSTREAM_BIN };
    return bins;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cgw-js-bin-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('go', ['build', '-o', dir, './cmd/gateway', './cmd/chatio-sim', './clients/js/test/upstream'], { cwd: repo, stdio: 'inherit' });
  bins = { gateway: join(dir, 'gateway'), sim: join(dir, 'chatio-sim'), upstream: join(dir, 'upstream') };
  return bins;
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** waitUntil polls cond (async) every 20 ms until it is truthy or timeout ms pass. */
export async function waitUntil(what, cond, timeout = 10000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

class Proc {
  constructor(name, bin, args, env) {
    this.name = name;
    this.out = [];
    this.child = spawn(bin, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b) => {
      this.out.push(b.toString());
      if (this.out.length > 400) this.out.shift();
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((r) => this.child.once('exit', r));
  }

  async stop(signal = 'SIGTERM') {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(t);
  }
}

/** The simulator: url (ws base for CHATIO_URL), control(path, body). */
export async function startSim() {
  const port = await freePort();
  const p = new Proc('chatio-sim', binaries().sim, ['-addr', `127.0.0.1:${port}`, '-bot=false', '-log-level', 'warn'], {});
  const http = `http://127.0.0.1:${port}`;
  await waitUntil('the simulator', () => fetch(http + '/control/v1/stats').then((r) => r.ok, () => false));
  return {
    url: `ws://127.0.0.1:${port}/customer/v0.5`,
    async control(path, body) {
      const r = await fetch(http + '/control/v1' + path, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const j = await r.json();
      if (!r.ok) throw new Error(`control ${path}: ${r.status} ${JSON.stringify(j)}`);
      return j;
    },
    stop: () => p.stop(),
    logs: () => p.out.join(''),
  };
}

/**
 * A gateway on the simulator. restart() stops it (SIGTERM: its streams
 * are drained with a retry hint) and starts it again on the same port and
 * data dir.
 */
export async function startGateway(sim, env = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'cgw-js-data-'));
  const url = `http://127.0.0.1:${port}`;
  const fullEnv = {
    GATEWAY_ADDR: `127.0.0.1:${port}`,
    CHATIO_URL: sim.url,
    CHATIO_LICENSE: '1',
    GATEWAY_DATA_DIR: dataDir,
    GATEWAY_LOG_LEVEL: 'warn',
    GATEWAY_RETRY_HINT: '200ms',
    GATEWAY_SHUTDOWN_GRACE: '5s',
    GATEWAY_RECONNECT_MIN: '20ms',
    GATEWAY_RECONNECT_MAX: '200ms',
    GATEWAY_RATE_LIMIT: '1000',
    GATEWAY_RATE_BURST: '1000',
    ...env,
  };
  let p;
  const start = async () => {
    p = new Proc('gateway', binaries().gateway, [], fullEnv);
    await waitUntil('the gateway', () => fetch(url + '/readyz').then((r) => r.ok, () => false), 30000);
  };
  await start();
  return {
    url,
    async restart() {
      await p.stop();
      await start();
    },
    async stop() {
      await p.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
    logs: () => p.out.join(''),
  };
}

/**
 * A scenario upstream (test/upstream) playing testdata/oracle/NAME.json:
 * url for CHATIO_URL, and its control API.
 */
// withGateway registers the calling test file's before and after hooks
// that run a simulator and a gateway on it (startSim, startGateway with
// gatewayEnv), and returns the object whose sim and gw they set.
export function withGateway(gatewayEnv) {
  const env = { sim: undefined, gw: undefined };
  before(async () => {
    env.sim = await startSim();
    env.gw = await startGateway(env.sim, gatewayEnv);
  });
  after(async () => {
    await env.gw?.stop();
    await env.sim?.stop();
  });
  return env;
}

export async function startScenarioUpstream(path) {
  const child = spawn(binaries().upstream, [path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const line = await new Promise((ok, fail) => {
    let buf = '';
    child.stdout.on('data', (b) => {
      buf += b;
      const i = buf.indexOf('\n');
      if (i >= 0) ok(buf.slice(0, i));
    });
    child.once('exit', (code) => fail(new Error('upstream exited: ' + code)));
  });
  const { url, control } = JSON.parse(line);
  const post = async (path) => {
    const r = await fetch(control + path, { method: 'POST' });
    if (!r.ok) throw new Error(`upstream ${path}: ${r.status} ${await r.text()}`);
  };
  return {
    url,
    step: (i) => post(`/step?i=${i}`),
    push: (i) => post(`/push?i=${i}`),
    drop: () => post('/drop'),
    requests: () => fetch(control + '/requests').then((r) => r.json()),
    problems: () => fetch(control + '/problems').then((r) => r.json()),
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

/** The simulator's customer id for a token (chatiosim.CustomerIDForToken). */
export function customerIdOf(token) {
  const h = createHash('sha256').update(token).digest('hex').slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function newToken(prefix = 'js') {
  return `${prefix}-${randomBytes(9).toString('hex')}`;
}

/**
 * An auth object of @livechat/chat.io-customer-auth's shape: getToken()
 * resolves the current token, getFreshToken() the next one (fresh, if
 * given) and makes it current. calls counts both.
 */
export function makeAuth(token, fresh) {
  let current = token;
  const tok = (t) => ({ accessToken: t, tokenType: 'Bearer', entityId: customerIdOf(fresh ?? token), expiresIn: 3600, creationDate: Date.now() });
  const auth = {
    calls: { getToken: 0, getFreshToken: 0 },
    async getToken() {
      auth.calls.getToken++;
      return tok(current);
    },
    async getFreshToken() {
      auth.calls.getFreshToken++;
      if (fresh !== undefined) current = fresh;
      return tok(current);
    },
    async hasToken() {
      return true;
    },
    async invalidate() {},
  };
  return auth;
}

/** record collects every event of sdk (`on('*')`) as [name, data]; waitFor(pred) waits for one that matches. */
export function record(sdk) {
  const events = [];
  const waiters = new Set();
  sdk.on('*', (name, data) => {
    events.push([name, data]);
    for (const w of waiters) {
      if (w.pred(name, data)) {
        waiters.delete(w);
        w.ok([name, data]);
      }
    }
  });
  return {
    events,
    names: () => events.map((e) => e[0]),
    /** waitFor resolves with the first event from index `from` on that matches. */
    waitFor(pred, { from = 0, timeout = 10000, what = 'an event' } = {}) {
      for (let i = from; i < events.length; i++) if (pred(...events[i])) return Promise.resolve(events[i]);
      return new Promise((ok, fail) => {
        const w = { pred, ok: (v) => { clearTimeout(timer); ok(v); } };
        waiters.add(w);
        const timer = setTimeout(() => {
          if (waiters.delete(w)) fail(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events.map((e) => e[0]))}`));
        }, timeout);
      });
    },
    /** since(i) is the events from index i on. */
    since: (i) => events.slice(i),
  };
}

export const isNewEvent = (text) => (name, data) => name === 'new_event' && data && data.event && data.event.text === text;
