// The .NET runtime's own account of its JIT and GC time, for comparison with lxprof's
// classification (profiler/tests/dotnet.rs). Runs a JIT- and allocation-heavy workload
// (a generic method instantiated over up to 168 × 168 value types, then a ring of
// mid-lived records replaced in turn) while an in-process EventListener subscribed to the runtime's
// "Microsoft-Windows-DotNETRuntime" events (keywords GC 0x1 and JIT 0x10, Verbose) times:
//   JIT: MethodJittingStarted (145) -> MethodLoadVerbose (143) of the same method on the same
//        thread (outermost compilations only), split by the optimization tier in MethodFlags;
//   GC:  GCStart (1) -> GCEnd (2), and the pauses GCSuspendEEBegin (9) -> GCRestartEEEnd (3).
// The events' intervals are wall time: on a busy machine a thread is also preempted inside
// them. Each interval is therefore also weighed by the main thread's on-CPU fraction over the
// phase it falls in (the JIT phase, the allocation phase, the rest), from the kernel's thread
// CPU clock (CLOCK_THREAD_CPUTIME_ID) against the wall clock: "*_cpu_ms" in the output.
// Prints one JSON line of totals. The listener itself runs managed code on the runtime's
// event-dispatch thread; its JIT and GC are part of the process and of both accounts.
// Usage: dotnet exec --runtimeconfig X.runtimeconfig.json RuntimeEvents.exe JIT_ROUNDS ALLOC_ROUNDS
using System;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading;

/// <summary>A JIT compilation or a GC pause: its start (UTC ticks), duration (ticks), kind.</summary>
struct Interval { public long Start, Ticks; public int Kind; }

sealed class RuntimeListener : EventListener
{
    static readonly PropertyInfo TimeStampProp = typeof(EventWrittenEventArgs).GetProperty("TimeStamp");
    static readonly PropertyInfo ThreadProp = typeof(EventWrittenEventArgs).GetProperty("OSThreadId");

    readonly object gate = new object();
    // Per thread: the compilations in progress (method id, start ticks), outermost first.
    readonly Dictionary<long, List<KeyValuePair<ulong, long>>> jitting = new Dictionary<long, List<KeyValuePair<ulong, long>>>();
    readonly Dictionary<long, long> gcStart = new Dictionary<long, long>();
    long suspendStart = -1;
    public const int Jit = 0, JitTier1 = 1, Pause = 2;
    public readonly List<Interval> Intervals = new List<Interval>();
    public long JitTicks, JitTier1Ticks, GcTicks, PauseTicks, Events, MaxTicks;
    public int Dangling { get { lock (gate) { int n = 0; foreach (var s in jitting.Values) n += s.Count; return n; } } }
    public int JitMethods, JitTier1Methods, GcEnds, Pauses, UnmatchedLoads;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)(0x1 | 0x10));
    }

    static object Field(EventWrittenEventArgs e, string name)
    {
        var i = e.PayloadNames == null ? -1 : e.PayloadNames.IndexOf(name);
        return i < 0 ? null : e.Payload[i];
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (TimeStampProp == null || ThreadProp == null) return;
        var ts = ((DateTime)TimeStampProp.GetValue(e)).Ticks;
        var tid = Convert.ToInt64(ThreadProp.GetValue(e));
        lock (gate)
        {
            Events++;
            switch (e.EventId)
            {
                case 145: // MethodJittingStarted
                {
                    List<KeyValuePair<ulong, long>> stack;
                    if (!jitting.TryGetValue(tid, out stack)) jitting[tid] = stack = new List<KeyValuePair<ulong, long>>();
                    stack.Add(new KeyValuePair<ulong, long>(Convert.ToUInt64(Field(e, "MethodID")), ts));
                    break;
                }
                case 143: // MethodLoadVerbose
                {
                    List<KeyValuePair<ulong, long>> stack;
                    var id = Convert.ToUInt64(Field(e, "MethodID"));
                    var at = jitting.TryGetValue(tid, out stack) ? stack.FindLastIndex(p => p.Key == id) : -1;
                    // Dynamic methods and IL stubs are jitted without a MethodJittingStarted.
                    if (at < 0) { UnmatchedLoads++; break; }
                    if (at == 0)
                    {
                        var d = ts - stack[0].Value;
                        if (d > MaxTicks) MaxTicks = d;
                        JitTicks += d;
                        JitMethods++;
                        var flags = Convert.ToUInt32(Field(e, "MethodFlags"));
                        var tier1 = ((flags >> 7) & 0x7) == 4;
                        if (tier1) { JitTier1Ticks += d; JitTier1Methods++; }
                        Intervals.Add(new Interval { Start = stack[0].Value, Ticks = d, Kind = tier1 ? JitTier1 : Jit });
                    }
                    stack.RemoveRange(at, stack.Count - at);
                    break;
                }
                case 1: // GCStart
                    gcStart[Convert.ToInt64(Field(e, "Count"))] = ts;
                    break;
                case 2: // GCEnd
                {
                    long start;
                    var n = Convert.ToInt64(Field(e, "Count"));
                    if (gcStart.TryGetValue(n, out start)) { GcTicks += ts - start; gcStart.Remove(n); }
                    GcEnds++;
                    break;
                }
                case 9: // GCSuspendEEBegin
                    suspendStart = ts;
                    break;
                case 3: // GCRestartEEEnd
                    if (suspendStart >= 0)
                    {
                        PauseTicks += ts - suspendStart;
                        Pauses++;
                        Intervals.Add(new Interval { Start = suspendStart, Ticks = ts - suspendStart, Kind = Pause });
                        suspendStart = -1;
                    }
                    break;
            }
        }
    }

    public int GcEndsSeen { get { lock (gate) return GcEnds; } }

    /// <summary>Sums the intervals of `kind`, each weighed by the on-CPU fraction of the
    /// phase its start falls in (phases: [from, to) UTC ticks and their fraction).</summary>
    public double CpuTicks(int kind, long[] phaseEnds, double[] fractions)
    {
        double sum = 0;
        lock (gate)
            foreach (var iv in Intervals)
            {
                if (iv.Kind != kind) continue;
                int k = 0;
                while (k < phaseEnds.Length - 1 && iv.Start >= phaseEnds[k]) k++;
                sum += iv.Ticks * fractions[k];
            }
        return sum;
    }
}

// Value types of different layouts: each instantiation over them is compiled apart.
struct V1 { public byte A; }
struct V2 { public int A; public short B; }
struct V3 { public float A; public long B; }
struct V4 { public char A; public double B; public byte C; }
struct V5 { public long A, B, C; }
struct V6 { public decimal A; public bool B; }
struct W<T> { public T A; public int B; }
struct P<T, U> { public T A; public U B; }

static class Program
{
    // Instantiated over value types, each Touch<T, U> is a method of its own to compile
    // (with metadata: the runtime times it with MethodJittingStarted → MethodLoadVerbose;
    // dynamic methods, e.g. compiled expression trees, get no MethodJittingStarted event).
    static int Touch<T, U>(T a, U b, int n)
    {
        var items = new List<KeyValuePair<T, U>>();
        for (int i = 0; i < n; i++) items.Add(new KeyValuePair<T, U>(a, b));
        int acc = typeof(T).Name.Length ^ typeof(U).Name.Length;
        foreach (var kv in items)
        {
            acc = acc * 31 + (kv.Key.Equals(a) ? 1 : 0) + (kv.Value.Equals(b) ? 2 : 0);
            if (acc % 7 == 3) acc ^= items.Count;
            else if (acc % 11 == 5) acc += items.Count * 3;
        }
        return acc;
    }

    static int JitWork(int methods)
    {
        var basic = new List<Type> { typeof(V1), typeof(V2), typeof(V3), typeof(V4), typeof(V5), typeof(V6),
            typeof(int), typeof(long), typeof(double), typeof(byte), typeof(decimal), typeof(Guid) };
        var types = new List<Type>(basic);
        foreach (var t in basic) types.Add(typeof(W<>).MakeGenericType(t));
        foreach (var t in basic)
            foreach (var u in basic)
                types.Add(typeof(P<,>).MakeGenericType(t, u));
        var touch = typeof(Program).GetMethod("Touch", BindingFlags.NonPublic | BindingFlags.Static);
        int acc = 0, done = 0;
        foreach (var t in types)
            foreach (var u in types)
            {
                if (done++ >= methods) return acc;
                var m = touch.MakeGenericMethod(t, u);
                acc ^= (int)m.Invoke(null, new object[] { Activator.CreateInstance(t), Activator.CreateInstance(u), 4 });
            }
        return acc;
    }

    /// <summary>Mid-lived objects: a ring of records replaced in turn, so that each
    /// collection finds many survivors to mark and compact.</summary>
    sealed class Record { public string Key; public int[] Values; public Record Previous; }

    static long AllocWork(int rounds)
    {
        var ring = new Record[100000];
        long sum = 0;
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < ring.Length / 4; i++)
            {
                var slot = (r * 7919 + i * 31) % ring.Length;
                var rec = new Record { Key = "k" + slot, Values = new int[8 + (i % 96)], Previous = ring[(slot + 1) % ring.Length] };
                rec.Values[0] = r ^ i;
                sum += rec.Values.Length + (ring[slot] == null ? 0 : ring[slot].Values[0]);
                ring[slot] = rec;
            }
        return sum;
    }

    static string Ms(double ticks) { return (ticks / 10000.0).ToString("F3", CultureInfo.InvariantCulture); }

    [StructLayout(LayoutKind.Sequential)]
    struct Timespec { public long Sec; public long Nsec; }

    [DllImport("libc.so.6")]
    static extern int clock_gettime(int clock, out Timespec ts);

    /// <summary>The calling thread's CPU time in 100 ns ticks (CLOCK_THREAD_CPUTIME_ID).</summary>
    static long ThreadCpuTicks()
    {
        Timespec ts;
        if (clock_gettime(3, out ts) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return ts.Sec * 10000000 + ts.Nsec / 100;
    }

    /// <summary>On-CPU fraction of the main thread between two (wall, cpu) readings.</summary>
    static double Fraction(long wall0, long cpu0, long wall1, long cpu1)
    {
        return wall1 > wall0 ? Math.Min(1.0, (double)(cpu1 - cpu0) / (wall1 - wall0)) : 1.0;
    }

    static int Main(string[] args)
    {
        int jitRounds = args.Length > 0 ? int.Parse(args[0]) : 1500;
        int allocRounds = args.Length > 1 ? int.Parse(args[1]) : 200;
        using (var listener = new RuntimeListener())
        {
            long w0 = DateTime.UtcNow.Ticks, c0 = ThreadCpuTicks();
            int j = JitWork(jitRounds);
            long w1 = DateTime.UtcNow.Ticks, c1 = ThreadCpuTicks();
            long a = AllocWork(allocRounds);
            long w2 = DateTime.UtcNow.Ticks, c2 = ThreadCpuTicks();
            // Every GC's end event must have reached the listener (its dispatch thread polls).
            var gcs = GC.CollectionCount(0);
            for (int w = 0; w < 100 && listener.GcEndsSeen < gcs; w++) Thread.Sleep(50);
            Thread.Sleep(500);
            // Phases: up to the end of JitWork (start-up included), AllocWork, the rest
            // (mostly asleep: weighed like the allocation phase).
            var ends = new long[] { w1, w2, long.MaxValue };
            var fractions = new double[] { Fraction(w0, c0, w1, c1), Fraction(w1, c1, w2, c2), Fraction(w1, c1, w2, c2) };
            Console.WriteLine(
                "{{\"jit_ms\":{0},\"jit_methods\":{1},\"jit_tier1_ms\":{2},\"jit_tier1_methods\":{3}," +
                "\"gc_ms\":{4},\"gcs\":{5},\"gc_pause_ms\":{6},\"pauses\":{7},\"gc_count\":{8},\"events\":{9}," +
                "\"unmatched_loads\":{10},\"jit_max_ms\":{11},\"dangling\":{12}," +
                "\"on_cpu_jit_phase\":{13},\"on_cpu_alloc_phase\":{14},\"jit_cpu_ms\":{15},\"jit_tier1_cpu_ms\":{16}," +
                "\"gc_pause_cpu_ms\":{17},\"checksum\":{18}}}",
                Ms(listener.JitTicks), listener.JitMethods, Ms(listener.JitTier1Ticks), listener.JitTier1Methods,
                Ms(listener.GcTicks), listener.GcEnds, Ms(listener.PauseTicks), listener.Pauses, gcs, listener.Events,
                listener.UnmatchedLoads, Ms(listener.MaxTicks), listener.Dangling,
                fractions[0].ToString("F3", CultureInfo.InvariantCulture), fractions[1].ToString("F3", CultureInfo.InvariantCulture),
                Ms(listener.CpuTicks(RuntimeListener.Jit, ends, fractions) + listener.CpuTicks(RuntimeListener.JitTier1, ends, fractions)),
                Ms(listener.CpuTicks(RuntimeListener.JitTier1, ends, fractions)),
                Ms(listener.CpuTicks(RuntimeListener.Pause, ends, fractions)), j ^ a);
        }
        return 0;
    }
}
