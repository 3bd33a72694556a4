/* The call chain main -> chain_outer -> chain_middle -> chain_inner -> chain_leaf, each a
 * frame (noinline), built with -O2 -fomit-frame-pointer: ROUNDS calls of chain_outer,
 * then the program's own time as JSON. With a second argument `map`, a thread named
 * `mapper` changes the protection of 16 MiB of touched memory meanwhile (mapper ->
 * map_outer -> map_inner -> mprotect), so the process's mmap lock is held most of the
 * time. Used by profiler/tests/record/unwind.rs and scripts/bench-stacks.py. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
volatile unsigned long sink;
static volatile int done;
__attribute__((noinline)) unsigned long chain_leaf(unsigned long n) {
    unsigned long s = 0;
    for (unsigned long i = 0; i < n; i++) s += (i * i) ^ (s >> 3);
    return s;
}
__attribute__((noinline)) unsigned long chain_inner(unsigned long n) { unsigned long s = chain_leaf(n); sink += s; return s + 1; }
__attribute__((noinline)) unsigned long chain_middle(unsigned long n) { unsigned long s = chain_inner(n); sink += s; return s + 2; }
__attribute__((noinline)) unsigned long chain_outer(unsigned long n) { unsigned long s = chain_middle(n); sink += s; return s + 3; }
#define REGION (16u << 20)
static char *region;
__attribute__((noinline)) void map_inner(int prot) {
    if (mprotect(region, REGION, prot) != 0) abort();
    sink++;
}
__attribute__((noinline)) void map_outer(void) {
    map_inner(PROT_READ);
    map_inner(PROT_READ | PROT_WRITE);
    sink++;
}
static void *mapper(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "mapper");
    while (!done) map_outer();
    return NULL;
}
int main(int argc, char **argv) {
    long rounds = atol(argv[1]);
    int map = argc > 2 && strcmp(argv[2], "map") == 0;
    pthread_t t;
    if (map) {
        region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED) abort();
        memset(region, 1, REGION);
        if (pthread_create(&t, NULL, mapper, NULL) != 0) abort();
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long sum = 0;
    for (long i = 0; i < rounds; i++) sum += chain_outer(100000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    done = 1;
    if (map) pthread_join(t, NULL);
    printf("{\"self_ns\": %lld, \"t\": %lu}\n",
           (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), sum);
    return 0;
}
