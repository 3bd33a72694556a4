// Mono fixture program: JIT-heavy (expression trees compiled to new methods,
// generic methods instantiated over many value types) then allocation-heavy
// (nursery and major collections). Used by ../capture.sh.
using System;
using System.Collections.Generic;
using System.Linq.Expressions;
using System.Reflection;

struct S1 { public int A; }
struct S2 { public long A; public int B; }
struct S3 { public double A; public byte B; }
struct S4 { public short A; public long B; public int C; }
struct S5 { public decimal A; }
struct S6 { public Guid A; public int B; }

static class Program
{
    static int Touch<T, U>(T a, U b) { return a.GetHashCode() ^ b.GetHashCode() ^ typeof(T).Name.Length; }

    static int JitWork(int rounds)
    {
        int acc = 0;
        var param = Expression.Parameter(typeof(int), "x");
        for (int i = 0; i < rounds; i++)
        {
            Expression body = param;
            for (int k = 0; k < 8; k++)
                body = Expression.Add(Expression.Multiply(body, Expression.Constant(i + k)), Expression.Constant(k));
            var f = Expression.Lambda<Func<int, int>>(body, param).Compile();
            acc ^= f(i);
        }
        var types = new Type[] { typeof(S1), typeof(S2), typeof(S3), typeof(S4), typeof(S5), typeof(S6),
            typeof(int), typeof(long), typeof(double), typeof(byte), typeof(decimal), typeof(Guid) };
        var touch = typeof(Program).GetMethod("Touch", BindingFlags.NonPublic | BindingFlags.Static);
        foreach (var t in types)
            foreach (var u in types)
            {
                var m = touch.MakeGenericMethod(t, u);
                acc ^= (int)m.Invoke(null, new object[] { Activator.CreateInstance(t), Activator.CreateInstance(u) });
            }
        return acc;
    }

    class Node { public Node Next; public byte[] Payload; public string Name; }

    static long AllocWork(int rounds)
    {
        long total = 0;
        var keep = new List<Node>();
        for (int r = 0; r < rounds; r++)
        {
            Node head = null;
            for (int i = 0; i < 20000; i++)
                head = new Node { Next = head, Payload = new byte[64 + (i % 512)], Name = "n" + i };
            for (var n = head; n != null; n = n.Next) total += n.Payload.Length;
            if (r % 4 == 0) keep.Add(head);
            if (keep.Count > 24) keep.RemoveRange(0, 12);
        }
        return total + keep.Count;
    }

    static int Main(string[] args)
    {
        int jitRounds = args.Length > 0 ? int.Parse(args[0]) : 1500;
        int allocRounds = args.Length > 1 ? int.Parse(args[1]) : 400;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int j = JitWork(jitRounds);
        var jitMs = sw.ElapsedMilliseconds;
        long a = AllocWork(allocRounds);
        Console.WriteLine("jit {0} ms, alloc {1} ms, checksum {2}", jitMs, sw.ElapsedMilliseconds - jitMs, j ^ a);
        return 0;
    }
}
