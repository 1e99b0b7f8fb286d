/* Word count: reads stdin, prints "<lines> <words> <bytes>" like wc. */
#include <stdio.h>
#include <ctype.h>

int main(void) {
    static unsigned char buffer[1 << 16];
    unsigned long lines = 0, words = 0, bytes = 0;
    int in_word = 0;
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
        bytes += got;
        for (size_t i = 0; i < got; i++) {
            if (buffer[i] == '\n')
                lines++;
            if (isspace(buffer[i])) {
                in_word = 0;
            } else if (!in_word) {
                in_word = 1;
                words++;
            }
        }
    }
    printf("%lu %lu %lu\n", lines, words, bytes);
    return ferror(stdin) ? 1 : 0;
}
