// Builds dist/: the ES module and CommonJS builds (eventsource-parser left
// as their one dependency), the browser bundles (everything in one file:
// an IIFE that defines the global ChatioGatewaySDK, and an ES module), and
// the type declarations (tsc).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
const common = { entryPoints: ['src/index.ts'], bundle: true, target: ['es2022'], sourcemap: true, legalComments: 'inline', logLevel: 'warning' };
await Promise.all([
  build({ ...common, format: 'esm', platform: 'neutral', external: ['eventsource-parser'], outfile: 'dist/index.mjs' }),
  build({ ...common, format: 'cjs', platform: 'node', external: ['eventsource-parser'], outfile: 'dist/index.cjs' }),
  build({ ...common, format: 'iife', platform: 'browser', globalName: 'ChatioGatewaySDK', outfile: 'dist/browser/customer-sdk.js', footer: { js: 'ChatioGatewaySDK = Object.assign(ChatioGatewaySDK.default, ChatioGatewaySDK);' } }),
  build({ ...common, format: 'esm', platform: 'browser', outfile: 'dist/browser/customer-sdk.mjs' }),
]);
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
console.log('built dist/: index.mjs, index.cjs, browser/customer-sdk.js (global ChatioGatewaySDK), browser/customer-sdk.mjs, types/');
