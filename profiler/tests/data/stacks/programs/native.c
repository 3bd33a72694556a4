/* Native fixture program: user-space work (hashing, sorting) and kernel work
 * (writes, file reads, page faults on fresh memory). Used by ../capture.sh. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t hash_work(int rounds) {
    unsigned char buf[4096];
    uint64_t acc = 0;
    for (int r = 0; r < rounds; r++) {
        memset(buf, r & 0xff, sizeof buf);
        acc ^= fnv1a(buf, sizeof buf);
    }
    return acc;
}

static uint64_t sort_work(int rounds) {
    uint64_t acc = 0;
    for (int r = 0; r < rounds; r++) {
        size_t n = 20000;
        uint64_t *v = malloc(n * sizeof *v);
        if (!v) return acc;
        for (size_t i = 0; i < n; i++) v[i] = (i * 2654435761u) ^ r;
        qsort(v, n, sizeof *v, cmp_u64);
        acc += v[n / 2];
        free(v);
    }
    return acc;
}

static uint64_t kernel_work(int rounds) {
    uint64_t acc = 0;
    char buf[256];
    int null = open("/dev/null", O_WRONLY);
    for (int r = 0; r < rounds; r++) {
        int fd = open("/proc/self/stat", O_RDONLY);
        if (fd >= 0) { acc += read(fd, buf, sizeof buf); close(fd); }
        if (null >= 0) acc += write(null, buf, sizeof buf);
        size_t len = 8 << 20;
        unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            for (size_t i = 0; i < len; i += 4096) m[i] = (unsigned char)i; /* page faults */
            munmap(m, len);
        }
    }
    if (null >= 0) close(null);
    return acc;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    uint64_t acc = hash_work(rounds * 1000) ^ sort_work(rounds) ^ kernel_work(rounds);
    printf("checksum %llu\n", (unsigned long long)acc);
    return 0;
}
