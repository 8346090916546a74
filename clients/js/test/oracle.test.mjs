// The SDK as the judge: every scenario of testdata/oracle is played by a
// scenario upstream (test/upstream) behind a real gateway, and an instance
// of this package makes each step's call with the SDK's own arguments. What
// it resolves (or rejects), the frames the gateway sends upstream and the
// events it emits must be what the official SDK 0.9.1 did with the same
// frames: testdata/oracle/golden, the sdk-oracle's output, committed. The
// events are the calling instance's own: the SDK emits nothing for what it
// resolves (its result pushes), and neither does this client.
//
// A second instance of the same customer (another tab) sees those result
// pushes as the SDK would see them without a request id, less user_data
// and thread_summary (the gateway logs what the SDK emits for its own call
// once, for every tab).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { init } from '../dist/index.mjs';
import { record, startGateway, startScenarioUpstream } from './harness.mjs';

const dir = new URL('../../../testdata/oracle/', import.meta.url);
const names = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();

const QUIET = 150; // ms with nothing new after a step's events
const norm = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));
const normEvents = (evs) => evs.map(([n, d]) => [n, norm(d)]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// fileOf makes the File of a sendFile step's {name, type, text | base64 | size}.
function fileOf(spec) {
  let bytes;
  if (spec.base64 !== undefined) bytes = Buffer.from(spec.base64, 'base64');
  else if (spec.size !== undefined) bytes = Buffer.alloc(spec.size, 'a');
  else bytes = Buffer.from(spec.text ?? '');
  return new File([bytes], spec.name, { type: spec.type });
}

// eventsOf waits until rec has want.length events after mark, then for a
// quiet window, and returns what came.
async function eventsOf(rec, mark, want) {
  const end = Date.now() + 5000;
  while (rec.events.length - mark < want.length && Date.now() < end) await sleep(10);
  let n;
  do {
    n = rec.events.length;
    await sleep(QUIET);
  } while (rec.events.length !== n);
  return normEvents(rec.since(mark));
}

function checkResult(where, step, gs, got) {
  if (gs.result.rejected !== undefined) {
    assert.ok(got.rejected, `${where}: resolved ${JSON.stringify(got.resolved)}, want rejected ${JSON.stringify(gs.result.rejected)}`);
    const want = gs.result.rejected;
    const e = got.rejected;
    let code = want.code, type = want.type, text = (want.reason ?? '') + (want.message ?? '');
    if (code === undefined) { // a wire error as is: REQUEST_FAILED
      code = 'REQUEST_FAILED';
      type = want.error?.type;
      text = want.error?.message ?? '';
    } else if (code === 'AUTHENTICATION') {
      text = want.error ?? '';
    }
    assert.equal(e.code, code, `${where}: code`);
    assert.equal(e.type, type, `${where}: type`);
    if (text) assert.equal(e.message, text, `${where}: message`);
    return;
  }
  assert.ok(!got.rejected, `${where}: rejected ${got.rejected && `${got.rejected.code} ${got.rejected.message}`}, want ${JSON.stringify(gs.result)}`);
  if (gs.result.returned !== undefined) {
    assert.deepEqual(norm(got.resolved), gs.result.returned, `${where}: returned`);
    return;
  }
  assert.deepEqual(norm(got.resolved), gs.result.resolved, `${where}: resolved`);
}

const reqs = (rs) => rs.map((r) => (r.payload === undefined ? { action: r.action } : { action: r.action, payload: r.payload }));

for (const name of names) {
  describe(`oracle ${name}`, () => {
    const sc = JSON.parse(readFileSync(new URL(name + '.json', dir), 'utf8'));
    const g = JSON.parse(readFileSync(new URL('golden/' + name + '.json', dir), 'utf8'));
    let up, gw;
    before(async () => {
      up = await startScenarioUpstream(new URL(name + '.json', dir).pathname);
      gw = await startGateway(up, { CHATIO_LICENSE: '123', GATEWAY_RECONNECT_WAIT: '5s' });
    });
    after(async () => {
      await gw?.stop();
      await up?.stop();
    });

    test('resolves, sends upstream and emits what the SDK did', async (t) => {
      let current = sc.token;
      const tok = (access) => ({ accessToken: access, tokenType: 'Bearer', entityId: sc.customerId, expiresIn: 3600, creationDate: 0 });
      const auth = {
        getToken: async () => tok(current),
        getFreshToken: async () => {
          current = sc.freshToken ?? sc.token;
          return tok(current);
        },
      };
      const a = init({ gatewayUrl: gw.url, auth });
      t.after(() => a.destroy());
      const ra = record(a);
      const connect = await eventsOf(ra, 0, g.connect.events);
      assert.deepEqual(connect, g.connect.events, 'connect: events');
      assert.deepEqual(reqs(await up.requests()), reqs(g.connect.requests), 'connect: upstream requests');

      // The other tab: opened once the session is up.
      const b = init({ gatewayUrl: gw.url, auth: { getToken: async () => tok(current), getFreshToken: async () => tok(current) } });
      t.after(() => b.destroy());
      const rb = record(b);
      await rb.waitFor((n) => n === 'connected', { what: 'the other tab connected' });
      await sleep(QUIET);

      const iterators = new Map();
      const inFlight = new Map(); // step → its settlement
      for (const [i, st] of sc.steps.entries()) {
        const gs = g.steps[i];
        const where = `step ${i} (${st.call ?? (st.push ? 'push' : st.drop ? 'drop' : 'wait')})`;
        await up.step(i);
        const ma = ra.events.length, mb = rb.events.length;
        let wantB = [...gs.events];
        if (st.call) {
          for (const rp of gs.resultPushes ?? []) {
            for (const e of rp.asPushEvents) if (e[0] !== 'user_data' && e[0] !== 'thread_summary') wantB.push(e);
          }
          const args = structuredClone(st.args ?? []);
          let p;
          switch (st.call) {
            case 'getChatHistory.next': {
              const key = st.iterator ?? args[0];
              if (!iterators.has(key)) iterators.set(key, a.getChatHistory(args[0]));
              p = iterators.get(key).next();
              break;
            }
            case 'sendFile':
              p = a.sendFile(args[0], { ...args[1], file: fileOf(args[1].file) });
              break;
            default:
              p = a[st.call](...args);
          }
          const settled = Promise.resolve(p).then((resolved) => ({ resolved }), (rejected) => ({ rejected }));
          if (st.inFlight) inFlight.set(i, settled);
          else checkResult(where, st, gs, await settled);
        } else if (st.push) {
          await up.push(i);
        } else if (st.drop) {
          await up.drop();
        } else if (st.wait !== undefined) {
          await sleep(st.wait);
        }
        for (const [j, settled] of inFlight) {
          if (g.steps[j].settledInStep === i) {
            checkResult(`step ${j} (in flight)`, sc.steps[j], g.steps[j], await settled);
            inFlight.delete(j);
          }
        }
        const [gotA, gotB] = await Promise.all([eventsOf(ra, ma, gs.events), eventsOf(rb, mb, wantB)]);
        assert.deepEqual(gotA, gs.events, `${where}: events of the calling instance`);
        assert.deepEqual(gotB, wantB, `${where}: events of the other tab`);
        assert.deepEqual(reqs(await up.requests()), reqs(gs.requests), `${where}: upstream requests`);
      }
      assert.deepEqual(await up.problems(), [], 'upstream problems');
    });
  });
}
