/* Sample program of the cpu-bound package (koji-adjutant examples): the
 * lengths of the Collatz sequences of 1..N, on one thread. Deterministic,
 * integer only, no I/O but one line, so its time is all CPU and scales with N. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    unsigned long n = strtoul(argv[1], NULL, 10), total = 0, longest = 0, longest_at = 1;
    for (unsigned long i = 1; i <= n; i++) {
        unsigned long x = i, steps = 0;
        while (x != 1) {
            x = (x & 1) ? 3 * x + 1 : x / 2;
            steps++;
        }
        total += steps;
        if (steps > longest) {
            longest = steps;
            longest_at = i;
        }
    }
    printf("1..%lu: %lu steps in all, the longest %lu (from %lu)\n", n, total, longest, longest_at);
    return 0;
}
