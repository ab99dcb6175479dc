'use strict';
// The TypeScript declarations (lib/index.d.ts and the generated .d.ts files) checked by
// the TypeScript compiler against test/types/check.ts. The compiler comes from the
// package's devDependencies: $SHOAL_NODE_TSC, else node_modules/.bin/tsc; without it the
// test is skipped.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { generate } = require('./gen');

const pkg = path.join(__dirname, '..');
const tsc = process.env.SHOAL_NODE_TSC || path.join(pkg, 'node_modules', '.bin', 'tsc');

test('declarations type-check', { skip: !fs.existsSync(tsc) && `no TypeScript compiler at ${tsc}` }, () => {
  const dir = generate('typescript');
  fs.copyFileSync(path.join(__dirname, 'types', 'check.ts'), path.join(dir, 'check.ts'));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'es2020', module: 'nodenext', moduleResolution: 'nodenext',
      lib: ['es2020'], types: [], paths: { shoal: [path.join(pkg, 'lib', 'index.d.ts')] },
    },
    files: ['check.ts'],
  }));
  try {
    execFileSync(tsc, ['-p', dir], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc found errors:\n${e.stdout}${e.stderr}`);
  }
});
