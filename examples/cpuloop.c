/* CPU-bound loop for the benchmark: an LCG plus integer mixing, N rounds
 * (argv[1], default 200 million).  Prints the checksum. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

int main(int argc, char **argv) {
    uint64_t rounds = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000000ULL;
    uint64_t state = 88172645463325252ULL, sum = 0;
    for (uint64_t i = 0; i < rounds; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        sum += (state >> 33) ^ (i & 0xff);
    }
    printf("%llu\n", (unsigned long long)sum);
    return 0;
}
