/* The call chain main -> chain_outer -> chain_middle -> chain_inner -> chain_leaf, each a
 * frame (noinline), built with -O2 -fomit-frame-pointer: ROUNDS calls of chain_outer,
 * then the program's own time as JSON. Used by profiler/tests/record/unwind.rs and
 * scripts/bench-stacks.py. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) unsigned long chain_leaf(unsigned long n) {
    unsigned long s = 0;
    for (unsigned long i = 0; i < n; i++) s += (i * i) ^ (s >> 3);
    return s;
}
__attribute__((noinline)) unsigned long chain_inner(unsigned long n) { unsigned long s = chain_leaf(n); sink += s; return s + 1; }
__attribute__((noinline)) unsigned long chain_middle(unsigned long n) { unsigned long s = chain_inner(n); sink += s; return s + 2; }
__attribute__((noinline)) unsigned long chain_outer(unsigned long n) { unsigned long s = chain_middle(n); sink += s; return s + 3; }
int main(int argc, char **argv) {
    long rounds = atol(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long t = 0;
    for (long i = 0; i < rounds; i++) t += chain_outer(100000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("{\"self_ns\": %lld, \"t\": %lu}\n",
           (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), t);
    return 0;
}
