#!/usr/bin/env node
// The reference side of bench_tokenizer: times npm gpt-3-encoder's encode() on the
// same documents, inside node (so node's start-up and the file reading are not
// counted), and prints one JSON line: {"bytes", "docs", "passes": [{"seconds", "tokens"}]}.
//
//   node tokenizer_js_bench.js <gpt-3-encoder folder> <docs.jsonl> [passes]
//
// Pass 1 starts with the encoder's (module-level) BPE cache empty; later passes find
// it filled, the "warm cache" case.
'use strict';
const fs = require('fs');
const path = require('path');

const [dir, input, passesArg] = process.argv.slice(2);
if (!input) {
  console.error('usage: node tokenizer_js_bench.js <gpt-3-encoder folder> <docs.jsonl> [passes]');
  process.exit(2);
}
const { encode } = require(path.join(dir, 'Encoder.js'));
const docs = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
const passes = [];
for (let p = 0; p < Number(passesArg || 2); p++) {
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  for (const d of docs) tokens += encode(d).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  passes.push({ seconds, tokens });
}
console.log(JSON.stringify({ bytes, docs: docs.length, passes }));
