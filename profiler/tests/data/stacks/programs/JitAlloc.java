// Java fixture program: hot methods compiled by C1 and C2 (many lambdas and
// distinct call sites), then allocation-heavy work under -Xmx256m (G1 young and
// mixed collections). Used by ../capture.sh.
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntUnaryOperator;

public class JitAlloc {
    static final class Node {
        Node next; byte[] payload; String name;
        Node(Node next, int i) { this.next = next; this.payload = new byte[64 + (i % 512)]; this.name = "n" + i; }
    }

    static int hot(IntUnaryOperator f, int n) {
        int acc = 0;
        for (int i = 0; i < n; i++) acc = acc * 31 + f.applyAsInt(i);
        return acc;
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 400;
        int allocRounds = args.length > 1 ? Integer.parseInt(args[1]) : 300;
        long t0 = System.nanoTime();
        int acc = 0;
        List<IntUnaryOperator> ops = new ArrayList<>();
        for (int r = 0; r < rounds; r++) {
            final int k = r;
            ops.add(x -> (x * (k | 1)) ^ (x >>> 3));
            ops.add(x -> Integer.rotateLeft(x, k & 31) + k);
            ops.add(x -> Long.hashCode((long) x * k) ^ String.valueOf(x).length());
        }
        for (IntUnaryOperator op : ops) acc ^= hot(op, 20_000);
        long t1 = System.nanoTime();
        long total = 0;
        List<Node> keep = new ArrayList<>();
        for (int r = 0; r < allocRounds; r++) {
            Node head = null;
            for (int i = 0; i < 20_000; i++) head = new Node(head, i);
            for (Node n = head; n != null; n = n.next) total += n.payload.length;
            if (r % 4 == 0) keep.add(head);
            if (keep.size() > 24) keep.subList(0, 12).clear();
        }
        System.out.printf("jit %d ms, alloc %d ms, checksum %d%n", (t1 - t0) / 1_000_000,
            (System.nanoTime() - t1) / 1_000_000, acc ^ total);
    }
}
