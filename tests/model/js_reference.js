#!/usr/bin/env node
// The reference for test_tokenizer: runs the npm gpt-3-encoder (GPT-2's encoder in
// JavaScript) on documents and writes what it gives, for bora to compare against.
//
//   node js_reference.js <gpt-3-encoder folder> <docs.jsonl> <out.jsonl>
//
// docs.jsonl: one JSON string per line (a document). out.jsonl: one line per
// document, [ids, piece_lengths]: the encoder's token ids, and the UTF-8 byte length
// of each match of its pre-tokenizer regex (taken from Encoder.js's own source, so
// it is the very pattern the encoder uses).
'use strict';
const fs = require('fs');
const path = require('path');

const [dir, input, output] = process.argv.slice(2);
if (!output) {
  console.error('usage: node js_reference.js <gpt-3-encoder folder> <docs.jsonl> <out.jsonl>');
  process.exit(2);
}
const encoderJs = path.join(dir, 'Encoder.js');
const { encode } = require(encoderJs);
const source = fs.readFileSync(encoderJs, 'utf8');
const m = source.match(/const pat = \/(.*)\/(\w*)\n/);
if (!m) throw new Error(`no "const pat = /.../" line in ${encoderJs}`);
const pat = new RegExp(m[1], m[2]);

const lines = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0);
const out = [];
for (const line of lines) {
  const text = JSON.parse(line);
  const pieces = Array.from(text.matchAll(pat), (x) => Buffer.byteLength(x[0], 'utf8'));
  out.push(JSON.stringify([encode(text), pieces]));
}
fs.writeFileSync(output, out.join('\n') + '\n');
