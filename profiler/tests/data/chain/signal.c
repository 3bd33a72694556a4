/* A signal handler's stack: main -> spin raises SIGUSR1 in a loop, and the handler
 * (on_signal) burns CPU in handler_leaf. A sample there has the kernel's signal frame
 * on its stack: handler_leaf <- on_signal <- __restore_rt (glibc's signal trampoline)
 * <- the interrupted libc code <- spin <- main. Built with -O2 -fomit-frame-pointer;
 * used by profiler/tests/record/unwind.rs. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
volatile unsigned long sink;
__attribute__((noinline)) void handler_leaf(void) {
    for (unsigned long i = 0; i < 200000; i++) sink += (i * i) ^ (sink >> 3);
}
static void on_signal(int sig) {
    (void)sig;
    handler_leaf();
    sink++;
}
__attribute__((noinline)) void spin(long rounds) {
    for (long i = 0; i < rounds; i++) {
        raise(SIGUSR1);
        sink++;
    }
}
int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    spin(argc > 1 ? atol(argv[1]) : 1000);
    return 0;
}
