// Node fixture program: many new functions compiled and hot ones optimized
// (Sparkplug / Maglev / TurboFan), then allocation-heavy work (scavenges and
// mark-compacts). Used by ../capture.sh.
'use strict';
const rounds = Number(process.argv[2] || 3000);
const allocRounds = Number(process.argv[3] || 300);

function hotLoop(fn, n) {
  let acc = 0;
  for (let i = 0; i < n; i++) acc = (acc + fn(i)) | 0;
  return acc;
}

let acc = 0;
const t0 = Date.now();
for (let r = 0; r < rounds; r++) {
  // A distinct function source each round: parsed, compiled, and hot enough to be optimized.
  const body = `let s = ${r}; for (let k = 0; k < 8; k++) { s = (s * ${r % 97 + 3} + x + k) % 1000003; } return s;`;
  const fn = new Function('x', body);
  acc ^= hotLoop(fn, 2000);
}
const t1 = Date.now();

class Item { constructor(i) { this.id = i; this.name = 'n' + i; this.payload = new Array(8 + (i % 32)).fill(i); } }
let keep = [];
let total = 0;
for (let r = 0; r < allocRounds; r++) {
  let list = [];
  for (let i = 0; i < 5000; i++) list.push(new Item(i));
  for (const it of list) total += it.payload.length;
  if (r % 4 === 0) keep.push(list);
  if (keep.length > 20) keep = keep.slice(10);
}
console.log(`jit ${t1 - t0} ms, alloc ${Date.now() - t1} ms, checksum ${acc ^ total}`);
