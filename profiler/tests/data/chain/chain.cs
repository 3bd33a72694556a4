// The call chain Main -> ChainOuter -> ChainMiddle -> ChainInner -> ChainLeaf (no inlining):
// ROUNDS calls of ChainOuter, then the program's own time as JSON. Used by
// profiler/tests/record/unwind.rs and scripts/bench-stacks.py.
using System;
using System.Runtime.CompilerServices;
class P {
    [MethodImpl(MethodImplOptions.NoInlining)] static long ChainLeaf(long n) { long s = 0; for (long i = 0; i < n; i++) s += (i * i) ^ (s >> 3); return s; }
    [MethodImpl(MethodImplOptions.NoInlining)] static long ChainInner(long n) { return ChainLeaf(n) + 1; }
    [MethodImpl(MethodImplOptions.NoInlining)] static long ChainMiddle(long n) { return ChainInner(n) + 2; }
    [MethodImpl(MethodImplOptions.NoInlining)] static long ChainOuter(long n) { return ChainMiddle(n) + 3; }
    static void Main(string[] a) {
        long rounds = long.Parse(a[0]), t = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (long k = 0; k < rounds; k++) t += ChainOuter(100000);
        long ns = sw.ElapsedTicks * (1000000000L / System.Diagnostics.Stopwatch.Frequency);
        Console.WriteLine("{\"self_ns\": " + ns + ", \"t\": " + t + "}");
    }
}
