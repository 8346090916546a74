// Builds dist/: the ES module and CommonJS builds (eventsource-parser left
// as their one dependency), the browser bundles (everything in one file:
// an IIFE that defines the global ChatioGatewaySDK, and an ES module), and
// the type declarations (tsc).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const esp = JSON.parse(readFileSync('node_modules/eventsource-parser/package.json', 'utf8'));
const espCopyright = readFileSync('node_modules/eventsource-parser/LICENSE', 'utf8').split('\n').find((l) => l.startsWith('Copyright')).trim();

rmSync('dist', { recursive: true, force: true });
const common = { entryPoints: ['src/index.ts'], bundle: true, target: ['es2022'], sourcemap: true, legalComments: 'inline', logLevel: 'warning' };
// The browser bundles: one file each, no source map (the gateway serves
// the IIFE to its widget as web/static/customer-sdk.js), with the notice of
// the library they include.
const browser = {
  platform: 'browser',
  sourcemap: false,
  banner: { js: '/*! @chatio-gateway/customer-sdk ' + pkg.version + ' (Apache-2.0). Includes eventsource-parser ' + esp.version + ', MIT License, ' + espCopyright + ' */' },
};
await Promise.all([
  build({ ...common, format: 'esm', platform: 'neutral', external: ['eventsource-parser'], outfile: 'dist/index.mjs' }),
  build({ ...common, format: 'cjs', platform: 'node', external: ['eventsource-parser'], outfile: 'dist/index.cjs' }),
  build({ ...common, ...browser, format: 'iife', globalName: 'ChatioGatewaySDK', outfile: 'dist/browser/customer-sdk.js', footer: { js: 'ChatioGatewaySDK = Object.assign(ChatioGatewaySDK.default, ChatioGatewaySDK);' } }),
  build({ ...common, ...browser, format: 'esm', outfile: 'dist/browser/customer-sdk.mjs' }),
]);
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
console.log('built dist/: index.mjs, index.cjs, browser/customer-sdk.js (global ChatioGatewaySDK), browser/customer-sdk.mjs, types/');
