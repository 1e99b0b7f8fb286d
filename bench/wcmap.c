/* Word-count mapper of bench/mapreduce.py, in C for WASI (or natively).
 *
 * Counts the words of stdin and writes "<word> <count>\n" lines to one file
 * per reducer.  The reducers are the entries of the output directory
 * (argv[1], default /dev/out, where ZeroCloud binds one file per connected
 * node), sorted by name; a word goes to reducer (sum of its bytes) % number
 * of reducers, exactly like the Python mapper, and words are separated by
 * ASCII whitespace like Python's bytes.split(), so both mappers feed the
 * same Python reducer with the same partitions.
 *
 *     clang --target=wasm32-wasi -O2 -o wcmap.wasm wcmap.c
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REDUCERS 256
#define READ_SIZE (1 << 20)
#define INITIAL_SLOTS (1 << 14)

struct entry {
    uint64_t hash;
    char *word;         /* NULL: free slot */
    size_t length;
    unsigned long long count;
};

struct table {
    struct entry *slots;
    size_t capacity;    /* a power of two */
    size_t used;
};

/* The bytes Python's bytes.split() treats as whitespace. */
static int is_space(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' ||
           c == '\f';
}

static void *checked(void *pointer) {
    if (pointer == NULL) {
        fputs("wcmap: out of memory\n", stderr);
        exit(1);
    }
    return pointer;
}

/* FNV-1a: simple and good enough for a few thousand distinct words. */
static uint64_t hash_bytes(const unsigned char *bytes, size_t length) {
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < length; i++) {
        hash ^= bytes[i];
        hash *= 1099511628211ULL;
    }
    return hash;
}

static struct entry *find_slot(struct entry *slots, size_t capacity,
                               uint64_t hash, const unsigned char *word,
                               size_t length) {
    size_t index = (size_t)hash & (capacity - 1);
    while (slots[index].word != NULL &&
           !(slots[index].hash == hash && slots[index].length == length &&
             memcmp(slots[index].word, word, length) == 0))
        index = (index + 1) & (capacity - 1);
    return &slots[index];
}

static void grow(struct table *table) {
    size_t capacity = table->capacity * 2;
    struct entry *slots = checked(calloc(capacity, sizeof *slots));
    for (size_t i = 0; i < table->capacity; i++) {
        struct entry *old = &table->slots[i];
        if (old->word != NULL)
            *find_slot(slots, capacity, old->hash,
                       (const unsigned char *)old->word, old->length) = *old;
    }
    free(table->slots);
    table->slots = slots;
    table->capacity = capacity;
}

static void add_word(struct table *table, const unsigned char *word,
                     size_t length) {
    uint64_t hash = hash_bytes(word, length);
    struct entry *slot = find_slot(table->slots, table->capacity, hash, word,
                                   length);
    if (slot->word == NULL) {
        slot->word = checked(malloc(length));
        memcpy(slot->word, word, length);
        slot->length = length;
        slot->hash = hash;
        table->used++;
        if (table->used * 2 > table->capacity)
            grow(table);
        /* The slot may have moved; the count is set through a new lookup. */
        slot = find_slot(table->slots, table->capacity, hash, word, length);
    }
    slot->count++;
}

/* A word cut by the end of a read buffer, kept until its end is read. */
struct carry {
    unsigned char *bytes;
    size_t length, capacity;
};

static void carry_append(struct carry *carry, const unsigned char *bytes,
                         size_t length) {
    if (carry->length + length > carry->capacity) {
        carry->capacity = (carry->length + length) * 2;
        carry->bytes = checked(realloc(carry->bytes, carry->capacity));
    }
    memcpy(carry->bytes + carry->length, bytes, length);
    carry->length += length;
}

static int count_words(FILE *in, struct table *table) {
    static unsigned char buffer[READ_SIZE];
    struct carry carry = {NULL, 0, 0};
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, in)) > 0) {
        size_t i = 0;
        if (carry.length > 0) {
            while (i < got && !is_space(buffer[i]))
                i++;
            carry_append(&carry, buffer, i);
            if (i == got)
                continue;
            add_word(table, carry.bytes, carry.length);
            carry.length = 0;
        }
        while (i < got) {
            while (i < got && is_space(buffer[i]))
                i++;
            size_t start = i;
            while (i < got && !is_space(buffer[i]))
                i++;
            if (i == start)
                break;
            if (i == got) {
                carry_append(&carry, buffer + start, i - start);
                break;
            }
            add_word(table, buffer + start, i - start);
        }
    }
    if (carry.length > 0)
        add_word(table, carry.bytes, carry.length);
    free(carry.bytes);
    if (ferror(in)) {
        fputs("wcmap: cannot read stdin\n", stderr);
        return 1;
    }
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of the output directory; their number, or -1. */
static int list_reducers(const char *directory, char **names) {
    DIR *dir = opendir(directory);
    if (dir == NULL) {
        fprintf(stderr, "wcmap: cannot open %s\n", directory);
        return -1;
    }
    int count = 0;
    struct dirent *item;
    while ((item = readdir(dir)) != NULL) {
        if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0)
            continue;
        if (count == MAX_REDUCERS) {
            fprintf(stderr, "wcmap: more than %d reducers in %s\n",
                    MAX_REDUCERS, directory);
            closedir(dir);
            return -1;
        }
        names[count++] = checked(strdup(item->d_name));
    }
    closedir(dir);
    if (count == 0) {
        fprintf(stderr, "wcmap: no reducer in %s\n", directory);
        return -1;
    }
    qsort(names, count, sizeof *names, by_name);
    return count;
}

static int write_partitions(const char *directory, const struct table *table) {
    char *names[MAX_REDUCERS];
    FILE *outputs[MAX_REDUCERS];
    int reducers = list_reducers(directory, names);
    if (reducers < 0)
        return 1;
    for (int r = 0; r < reducers; r++) {
        size_t size = strlen(directory) + strlen(names[r]) + 2;
        char *path = checked(malloc(size));
        snprintf(path, size, "%s/%s", directory, names[r]);
        outputs[r] = fopen(path, "w");
        if (outputs[r] == NULL) {
            fprintf(stderr, "wcmap: cannot open %s for writing\n", path);
            return 1;
        }
        free(path);
    }
    for (size_t i = 0; i < table->capacity; i++) {
        const struct entry *entry = &table->slots[i];
        if (entry->word == NULL)
            continue;
        unsigned long byte_sum = 0;
        for (size_t b = 0; b < entry->length; b++)
            byte_sum += (unsigned char)entry->word[b];
        FILE *out = outputs[byte_sum % (unsigned long)reducers];
        fwrite(entry->word, 1, entry->length, out);
        fprintf(out, " %llu\n", entry->count);
    }
    int status = 0;
    for (int r = 0; r < reducers; r++) {
        if (ferror(outputs[r]) || fclose(outputs[r]) != 0) {
            fprintf(stderr, "wcmap: cannot write %s/%s\n", directory,
                    names[r]);
            status = 1;
        }
        free(names[r]);
    }
    return status;
}

int main(int argc, char **argv) {
    const char *directory = argc > 1 ? argv[1] : "/dev/out";
    struct table table = {checked(calloc(INITIAL_SLOTS, sizeof(struct entry))),
                          INITIAL_SLOTS, 0};
    if (count_words(stdin, &table) != 0)
        return 1;
    return write_partitions(directory, &table);
}
