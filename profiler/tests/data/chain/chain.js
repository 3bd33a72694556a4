// The call chain main -> chainOuter -> chainMiddle -> chainInner -> chainLeaf (run with
// --no-turbo-inlining): ROUNDS calls of chainOuter, then the program's own time as JSON.
// Used by profiler/tests/record/unwind.rs and scripts/bench-stacks.py.
function chainLeaf(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * i) ^ (s >> 3); return s; }
function chainInner(n) { return chainLeaf(n) + 1; }
function chainMiddle(n) { return chainInner(n) + 2; }
function chainOuter(n) { return chainMiddle(n) + 3; }
function main(rounds) {
    const t0 = process.hrtime.bigint();
    let t = 0;
    for (let k = 0; k < rounds; k++) t += chainOuter(100000);
    console.log(JSON.stringify({ self_ns: Number(process.hrtime.bigint() - t0), t }));
}
main(Number(process.argv[2]));
