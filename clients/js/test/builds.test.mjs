// The package's builds: the ES module, the CommonJS build (require), the
// browser bundle (a plain script defining ChatioGatewaySDK) and the type
// declarations, each with init as the default export's, as the SDK's.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const dist = new URL('../dist/', import.meta.url);

test('ESM, CJS and browser builds export init, the default export with init, GatewayError and $$observable', async () => {
  const esm = await import('../dist/index.mjs');
  const cjs = require('../dist/index.cjs');
  const context = { URL, TextDecoder, TextEncoder, crypto: globalThis.crypto, fetch, queueMicrotask, setTimeout, clearTimeout, console };
  vm.createContext(context);
  vm.runInContext(readFileSync(new URL('browser/customer-sdk.js', dist), 'utf8'), context);
  const browser = vm.runInContext('ChatioGatewaySDK', context);
  for (const [name, m] of [['esm', esm], ['cjs', cjs], ['browser', browser]]) {
    assert.equal(typeof m.init, 'function', name);
    assert.equal(typeof m.default.init, 'function', name);
    assert.equal(typeof m.GatewayError, 'function', name);
    assert.ok(m.$$observable, name);
  }
  assert.equal(typeof browser.init, 'function');
  assert.throws(() => esm.init({ gatewayUrl: 'ftp://x', auth: { getToken() {}, getFreshToken() {} } }), TypeError);
  assert.throws(() => esm.init({ gatewayUrl: 'http://127.0.0.1:1', auth: {} }), TypeError);
  assert.ok(existsSync(new URL('types/index.d.ts', dist)));
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.deepEqual(Object.keys(pkg.dependencies), ['eventsource-parser']);
});
