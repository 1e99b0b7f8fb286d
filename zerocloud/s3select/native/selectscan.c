/*
 * ZeroCloud's native S3 Select scanner: a WASI program that answers the
 * common CSV selects at the speed of a C loop.
 *
 * It runs in the sandbox next to the object, as the Python engine
 * (zerocloud.s3select.engine) does, and writes the same event stream.
 * The proxy chooses it only for selects it runs exactly like the Python
 * engine (zerocloud/proxy/selectscan.py says which, and writes its plan):
 * uncompressed CSV whose records end with "\n", a projection of columns
 * or COUNT/SUM aggregates, a WHERE of AND/OR/NOT over comparisons of a
 * column, or of CAST(column AS INT|FLOAT), with a literal.
 *
 *   /plan        the plan (tokens; selectscan.py gives the grammar)
 *   /dev/input   the object (a seekable file or a stream)
 *   stdout       the event stream
 *
 * Every error S3 reports mid-stream is an "error" event, after which the
 * program exits 0 (its answer is complete), as the Python engine does.
 * Memory is bounded by the longest record (1 MiB, OverMaxRecordSize).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasm_simd128.h>

#define PLAN_PATH "/plan"
#define INPUT_PATH "/dev/input"
#define PLAN_MAGIC "zerocloud-select-scan"
#define PLAN_VERSION 1
#define MAX_RECORD (1 << 20)
#define READ_SIZE (256 * 1024)
#define EVENT_BYTES (256 * 1024)
#define KEEP_ALIVE_NS 1000000000LL
#define MAX_ERROR_TEXT 0xFFFF

typedef unsigned char uchar;

/* ---------------------------------------------------- byte scanning */

/* The first ``c`` in p[0..n), 16 bytes at a time (WebAssembly SIMD);
 * NULL if none. */
static const uchar *find_byte(const uchar *p, size_t n, uchar c) {
    const v128_t wanted = wasm_i8x16_splat((int8_t)c);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint32_t hits = wasm_i8x16_bitmask(
            wasm_i8x16_eq(wasm_v128_load(p + i), wanted));
        if (hits)
            return p + i + __builtin_ctz(hits);
    }
    for (; i < n; i++)
        if (p[i] == c)
            return p + i;
    return NULL;
}

/* Whether p[0..n) is all ASCII, and whether it holds ``c``. */
static void ascii_and_has(const uchar *p, size_t n, uchar c, int *ascii,
                          int *has) {
    const v128_t wanted = wasm_i8x16_splat((int8_t)c);
    v128_t high = wasm_i8x16_splat(0), seen = wasm_i8x16_splat(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128_t bytes = wasm_v128_load(p + i);
        high = wasm_v128_or(high, bytes);
        seen = wasm_v128_or(seen, wasm_i8x16_eq(bytes, wanted));
    }
    int any_high = wasm_i8x16_bitmask(high) != 0;
    int any_seen = wasm_v128_any_true(seen);
    for (; i < n; i++) {
        any_high |= p[i] >= 0x80;
        any_seen |= p[i] == c;
    }
    *ascii = !any_high;
    *has = any_seen;
}

/* ------------------------------------------------------------ buffers */

typedef struct {
    uchar *data;
    size_t len, cap;
} Buffer;

static void *checked(void *pointer) {
    if (!pointer) {
        static const char text[] = "selectscan: out of memory\n";
        write(2, text, sizeof text - 1);
        exit(70);
    }
    return pointer;
}

static void buffer_reserve(Buffer *b, size_t more) {
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    b->data = checked(realloc(b->data, cap));
    b->cap = cap;
}

static void buffer_add(Buffer *b, const void *data, size_t len) {
    buffer_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void buffer_text(Buffer *b, const char *text) {
    buffer_add(b, text, strlen(text));
}

/* ------------------------------------------------------------- output */

static void write_all(const uchar *data, size_t len) {
    while (len) {
        ssize_t put = write(1, data, len);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            exit(1); /* the client or the proxy went away */
        data += put;
        len -= (size_t)put;
    }
}

/* CRC-32 (zlib's), eight bytes a step: crc_table[k][b] is the CRC of
 * byte b followed by k zero bytes. */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            crc_table[k][n] = (crc_table[k - 1][n] >> 8) ^
                              crc_table[0][crc_table[k - 1][n] & 0xFF];
}

static uint32_t crc32_update(uint32_t crc, const uchar *data, size_t len) {
    crc = ~crc;
    for (; len >= 8; data += 8, len -= 8) {
        uint32_t low = crc ^ ((uint32_t)data[0] | (uint32_t)data[1] << 8 |
                              (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24);
        crc = crc_table[7][low & 0xFF] ^ crc_table[6][(low >> 8) & 0xFF] ^
              crc_table[5][(low >> 16) & 0xFF] ^ crc_table[4][low >> 24] ^
              crc_table[3][data[4]] ^ crc_table[2][data[5]] ^
              crc_table[1][data[6]] ^ crc_table[0][data[7]];
    }
    while (len--)
        crc = crc_table[0][(crc ^ *data++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void put_u32(uchar *at, uint32_t value) {
    at[0] = (uchar)(value >> 24);
    at[1] = (uchar)(value >> 16);
    at[2] = (uchar)(value >> 8);
    at[3] = (uchar)value;
}

/* One event-stream message: string headers (name, value pairs), payload. */
static void send_message(const char *const *headers, int count,
                         const uchar *payload, size_t payload_len) {
    static Buffer head;
    head.len = 12;
    buffer_reserve(&head, 0);
    for (int i = 0; i < count; i++) {
        const char *name = headers[2 * i], *value = headers[2 * i + 1];
        size_t name_len = strlen(name), value_len = strlen(value);
        uchar fixed[3];
        buffer_reserve(&head, 1 + name_len + 3 + value_len);
        head.data[head.len++] = (uchar)name_len;
        buffer_add(&head, name, name_len);
        fixed[0] = 7; /* string */
        fixed[1] = (uchar)(value_len >> 8);
        fixed[2] = (uchar)value_len;
        buffer_add(&head, fixed, 3);
        buffer_add(&head, value, value_len);
    }
    size_t headers_len = head.len - 12;
    put_u32(head.data, (uint32_t)(head.len + payload_len + 4));
    put_u32(head.data + 4, (uint32_t)headers_len);
    put_u32(head.data + 8, crc32_update(0, head.data, 8));
    uint32_t crc = crc32_update(0, head.data, head.len);
    crc = crc32_update(crc, payload, payload_len);
    uchar tail[4];
    put_u32(tail, crc);
    write_all(head.data, head.len);
    write_all(payload, payload_len);
    write_all(tail, 4);
}

typedef struct {
    Buffer pending;
    size_t complete; /* bytes of ``pending`` in whole records */
    uint64_t returned;
    int progress;
    int64_t last_event;
} Events;

static Events events;
/* S3's counts: bytes read of the object, and after decompression. */
static uint64_t bytes_scanned, bytes_processed;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sent(void) { events.last_event = now_ns(); }

static void flush_records(void) {
    static const char *const headers[] = {
        ":event-type", "Records", ":content-type",
        "application/octet-stream", ":message-type", "event"};
    if (!events.pending.len)
        return;
    send_message(headers, 3, events.pending.data, events.pending.len);
    events.returned += events.pending.len;
    events.pending.len = events.complete = 0;
    sent();
}

static void send_counts(const char *type) {
    const char *headers[] = {":event-type", type, ":content-type",
                             "text/xml", ":message-type", "event"};
    char payload[512];
    unsigned long long scanned = bytes_scanned, processed = bytes_processed;
    int len = snprintf(
        payload, sizeof payload,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><%s>"
        "<BytesScanned>%llu</BytesScanned>"
        "<BytesProcessed>%llu</BytesProcessed>"
        "<BytesReturned>%llu</BytesReturned></%s>",
        type, scanned, processed, (unsigned long long)events.returned, type);
    send_message(headers, 3, (const uchar *)payload, (size_t)len);
    sent();
}

static void send_bare(const char *type) {
    const char *headers[] = {":event-type", type, ":message-type", "event"};
    send_message(headers, 2, NULL, 0);
    sent();
}

/* Called after every read of the input: the scan is the clock. */
static void tick(void) {
    if (now_ns() - events.last_event < KEEP_ALIVE_NS)
        return;
    flush_records();
    if (events.progress)
        send_counts("Progress");
    send_bare("Cont");
}

static void finish(void) {
    flush_records();
    if (events.progress)
        send_counts("Progress");
    send_counts("Stats");
    send_bare("End");
    exit(0);
}

/* An S3 error: the records so far, then an "error" event; the answer is
 * complete, so the program succeeds. */
static void fail(const char *code, const char *format, ...) {
    static char message[MAX_ERROR_TEXT + 8];
    va_list args;
    va_start(args, format);
    size_t len = (size_t)vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (len > MAX_ERROR_TEXT) {
        len = MAX_ERROR_TEXT;
        while (len && ((uchar)message[len] & 0xC0) == 0x80)
            len--; /* cut before a character, not inside it */
        message[len] = 0;
    }
    events.pending.len = events.complete; /* not the record it was making */
    flush_records();
    const char *headers[] = {":error-code", code, ":error-message", message,
                             ":message-type", "error"};
    send_message(headers, 3, NULL, 0);
    exit(0);
}

/* --------------------------------------------------------------- plan */

enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
enum { X_AND, X_OR, X_NOT, X_INT, X_FLOAT, X_NUMBER, X_STRING, X_MISSING,
       X_LIKE };
/* LIKE pattern tokens: any run of characters, one character, bytes. */
enum { L_ANY, L_ONE, L_BYTES };
enum { A_COUNT_ALL, A_COUNT, A_SUM_INT, A_SUM_FLOAT, A_AVG_FLOAT, A_MIN_INT,
       A_MAX_INT, A_MIN_FLOAT, A_MAX_FLOAT, A_MIN_TEXT, A_MAX_TEXT };
enum { P_TEXT, P_INT, P_FLOAT };
enum { HEADER_NONE, HEADER_USE, HEADER_IGNORE };

typedef struct {
    long index;   /* in a row; -1 until a name is bound to the header */
    char *name;   /* as the query wrote it */
    int by_name, quoted;
    char *at;     /* "line L, column C" */
} Column;

typedef struct {
    int kind;
    char *bytes;
    size_t len;
} LikeToken;

typedef struct Expr {
    int kind, op;
    struct Expr *left, *right;
    Column *column;
    int64_t number;
    char *text;
    size_t text_len;
    LikeToken *pattern;
    long pattern_len;
} Expr;

typedef struct {
    int kind; /* P_TEXT: the column as it is, else CAST to INT or FLOAT */
    Column *column;
} Projected;

typedef struct {
    int kind;
    Column *column;
    int has;
    int64_t total;       /* SUM, MIN, MAX of INT */
    double total_float;  /* of FLOAT, and AVG's sum */
    Buffer best;         /* MIN, MAX of a column's text */
    uint64_t count;
} Aggregate;

typedef struct {
    uchar field, quote, comment;
    int has_quote, has_comment;
    int header; /* FileHeaderInfo */
    uint64_t start, stop;
    int has_stop;
    int gzip; /* CompressionType GZIP, else NONE */
    int json; /* JSON records, else CSV */
    Buffer out_field, out_record, out_quote, out_escaped_quote;
    int always_quote;
    Buffer *names; /* of the items, for JSON */
    Buffer *titles; /* the header's names, for JSON's SELECT * */
    long title_count;
    long needed; /* fields of a row the query reads */
    int64_t limit; /* -1: none */
    Column *columns;
    long column_count;
    int star;
    Projected *projected;
    long projected_count;
    Aggregate *aggregates;
    long aggregate_count;
    Expr *where;
} Plan;

static Plan plan;

typedef struct {
    char *text;
    char *at;
} Tokens;

static void bad_plan(const char *what) {
    fprintf(stderr, "selectscan: bad plan: %s\n", what);
    exit(65);
}

static char *token(Tokens *t) {
    while (*t->at == ' ' || *t->at == '\n')
        t->at++;
    if (!*t->at)
        bad_plan("it ends early");
    char *start = t->at;
    while (*t->at && *t->at != ' ' && *t->at != '\n')
        t->at++;
    if (*t->at)
        *t->at++ = 0;
    return start;
}

static void expect(Tokens *t, const char *word) {
    if (strcmp(token(t), word))
        bad_plan(word);
}

static int64_t number_token(Tokens *t) {
    char *text = token(t), *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (*end || errno)
        bad_plan(text);
    return value;
}

/* "x" followed by hex digits: any bytes (NUL-terminated copy, length). */
static char *decode_hex(const char *text, size_t *len) {
    if (text[0] != 'x' || strlen(text + 1) % 2)
        bad_plan(text);
    size_t n = strlen(text + 1) / 2;
    char *out = checked(malloc(n + 1));
    for (size_t i = 0; i < n; i++) {
        unsigned value;
        if (sscanf(text + 1 + 2 * i, "%2x", &value) != 1)
            bad_plan(text);
        out[i] = (char)value;
    }
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

static char *hex_token(Tokens *t, size_t *len) {
    return decode_hex(token(t), len);
}

static int byte_token(Tokens *t, uchar *byte) {
    size_t len;
    char *value = hex_token(t, &len);
    if (len > 1)
        bad_plan("a delimiter longer than a byte");
    *byte = (uchar)value[0];
    free(value);
    return len == 1;
}

static void buffer_token(Tokens *t, Buffer *b) {
    size_t len;
    char *value = hex_token(t, &len);
    buffer_add(b, value, len);
    free(value);
}

static Column *column_token(Tokens *t) {
    int64_t at = number_token(t);
    if (at < 0 || at >= plan.column_count)
        bad_plan("a column number");
    return &plan.columns[at];
}

static int op_token(Tokens *t) {
    static const char *names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
    char *text = token(t);
    for (int i = 0; i < 6; i++)
        if (!strcmp(text, names[i]))
            return i;
    bad_plan(text);
    return 0;
}

static Expr *expr_token(Tokens *t, const char *word) {
    Expr *e = checked(calloc(1, sizeof *e));
    if (!strcmp(word, "and") || !strcmp(word, "or")) {
        e->kind = word[0] == 'a' ? X_AND : X_OR;
        e->left = expr_token(t, token(t));
        e->right = expr_token(t, token(t));
    } else if (!strcmp(word, "not")) {
        e->kind = X_NOT;
        e->left = expr_token(t, token(t));
    } else if (!strcmp(word, "int") || !strcmp(word, "float") ||
               !strcmp(word, "number")) {
        e->kind = word[0] == 'i' ? X_INT : word[0] == 'f' ? X_FLOAT : X_NUMBER;
        e->column = column_token(t);
        e->op = op_token(t);
        e->number = number_token(t);
    } else if (!strcmp(word, "string")) {
        e->kind = X_STRING;
        e->column = column_token(t);
        e->op = op_token(t);
        e->text = hex_token(t, &e->text_len);
    } else if (!strcmp(word, "missing")) {
        e->kind = X_MISSING;
        e->column = column_token(t);
    } else if (!strcmp(word, "like")) {
        e->kind = X_LIKE;
        e->column = column_token(t);
        e->pattern_len = (long)number_token(t);
        e->pattern = checked(calloc((size_t)e->pattern_len + 1, sizeof(LikeToken)));
        for (long i = 0; i < e->pattern_len; i++) {
            LikeToken *k = &e->pattern[i];
            char *text = token(t);
            k->kind = !strcmp(text, "%") ? L_ANY
                      : !strcmp(text, "_") ? L_ONE : L_BYTES;
            if (k->kind == L_BYTES)
                k->bytes = decode_hex(text, &k->len);
        }
    } else {
        bad_plan(word);
    }
    return e;
}

static void read_plan(void) {
    Buffer text = {0};
    int fd = open(PLAN_PATH, O_RDONLY);
    if (fd < 0)
        bad_plan("no " PLAN_PATH);
    for (;;) {
        buffer_reserve(&text, 65536);
        ssize_t got = read(fd, text.data + text.len, 65536);
        if (got < 0)
            bad_plan("unreadable");
        if (!got)
            break;
        text.len += (size_t)got;
    }
    close(fd);
    buffer_add(&text, "", 1);
    Tokens t = {(char *)text.data, (char *)text.data};

    expect(&t, PLAN_MAGIC);
    if (number_token(&t) != PLAN_VERSION)
        bad_plan("its version");
    expect(&t, "input");
    if (!byte_token(&t, &plan.field))
        bad_plan("an empty field delimiter");
    plan.has_quote = byte_token(&t, &plan.quote);
    plan.has_comment = byte_token(&t, &plan.comment);
    char *header = token(&t);
    plan.gzip = !strcmp(token(&t), "GZIP");
    plan.header = !strcmp(header, "USE")      ? HEADER_USE
                  : !strcmp(header, "IGNORE") ? HEADER_IGNORE
                                              : HEADER_NONE;

    expect(&t, "range");
    plan.start = (uint64_t)number_token(&t);
    char *stop = token(&t);
    plan.has_stop = strcmp(stop, "-") != 0;
    plan.stop = plan.has_stop ? strtoull(stop, NULL, 10) : 0;

    expect(&t, "output");
    plan.json = !strcmp(token(&t), "json");
    if (plan.json) {
        buffer_text(&plan.out_field, ",");
        buffer_token(&t, &plan.out_record);
    } else {
        plan.always_quote = !strcmp(token(&t), "ALWAYS");
        buffer_token(&t, &plan.out_field);
        buffer_token(&t, &plan.out_record);
        buffer_token(&t, &plan.out_quote);
        buffer_token(&t, &plan.out_escaped_quote);
        buffer_add(&plan.out_escaped_quote, plan.out_quote.data,
                   plan.out_quote.len);
    }

    expect(&t, "progress");
    events.progress = number_token(&t) != 0;
    expect(&t, "limit");
    plan.limit = number_token(&t);

    expect(&t, "columns");
    plan.column_count = (long)number_token(&t);
    plan.columns = checked(calloc((size_t)plan.column_count + 1, sizeof(Column)));
    for (long i = 0; i < plan.column_count; i++) {
        Column *c = &plan.columns[i];
        c->index = (long)number_token(&t);
        c->name = hex_token(&t, NULL);
        c->by_name = c->index < 0;
        c->quoted = number_token(&t) != 0;
        c->at = hex_token(&t, NULL);
    }

    expect(&t, "select");
    char *kind = token(&t);
    if (!strcmp(kind, "star")) {
        plan.star = 1;
    } else if (!strcmp(kind, "items")) {
        plan.projected_count = (long)number_token(&t);
        plan.projected = checked(calloc((size_t)plan.projected_count + 1,
                                        sizeof(Projected)));
        for (long i = 0; i < plan.projected_count; i++) {
            char *how = token(&t);
            plan.projected[i].kind = !strcmp(how, "text") ? P_TEXT
                                     : !strcmp(how, "int") ? P_INT
                                     : !strcmp(how, "float") ? P_FLOAT : -1;
            if (plan.projected[i].kind < 0)
                bad_plan(how);
            plan.projected[i].column = column_token(&t);
        }
    } else if (!strcmp(kind, "aggregates")) {
        plan.aggregate_count = (long)number_token(&t);
        plan.aggregates = checked(calloc((size_t)plan.aggregate_count + 1,
                                         sizeof(Aggregate)));
        for (long i = 0; i < plan.aggregate_count; i++) {
            Aggregate *a = &plan.aggregates[i];
            char *name = token(&t);
            if (!strcmp(name, "countall")) {
                a->kind = A_COUNT_ALL;
                continue;
            }
            static const char *const kinds[] = {
                "countall", "count", "sumint", "sumfloat", "avgfloat",
                "minint", "maxint", "minfloat", "maxfloat", "mintext",
                "maxtext"};
            a->kind = -1;
            for (int k = A_COUNT; k <= A_MAX_TEXT; k++)
                if (!strcmp(name, kinds[k]))
                    a->kind = k;
            if (a->kind < 0)
                bad_plan(name);
            a->column = column_token(&t);
        }
    } else {
        bad_plan(kind);
    }
    expect(&t, "names");
    long names = (long)number_token(&t);
    plan.names = checked(calloc((size_t)names + 1, sizeof(Buffer)));
    for (long i = 0; i < names; i++)
        buffer_token(&t, &plan.names[i]);
    expect(&t, "where");
    char *where = token(&t);
    if (strcmp(where, "none"))
        plan.where = expr_token(&t, where);
    expect(&t, "end");
}

/* -------------------------------------------------------------- input */

typedef struct {
    int fd;
    int seekable;
    uchar *buf;
    size_t cap, head, tail; /* unread bytes: buf[head..tail) */
    uint64_t base;          /* the object's offset of buf[0] */
    size_t searched;        /* no "\n" in buf[head..searched) */
    int eof;
} Input;

static Input in;

static size_t utf8_sequence(const uchar *p, size_t avail, int *bad) {
    uchar c = p[0];
    size_t need;
    uint32_t low = 0x80, high = 0xBF;
    *bad = 0;
    if (c < 0xC2 || c > 0xF4) {
        *bad = 1;
        return 1;
    }
    if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0) low = 0xA0;
        if (c == 0xED) high = 0x9F; /* no surrogates */
    } else {
        need = 4;
        if (c == 0xF0) low = 0x90;
        if (c == 0xF4) high = 0x8F;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= avail)
            return 0; /* not complete yet */
        uchar d = p[i];
        if (d < (i == 1 ? low : 0x80) || d > (i == 1 ? high : 0xBF)) {
            *bad = 1;
            return i;
        }
    }
    return need;
}

/* Fails unless the record's bytes are UTF-8. */
static void check_utf8(const uchar *p, size_t len, uint64_t offset) {
    size_t at = 0;
    while (at < len) {
        if (p[at] < 0x80) {
            at++;
            continue;
        }
        int bad;
        size_t n = utf8_sequence(p + at, len - at, &bad);
        if (bad || !n)
            fail("InvalidTextEncoding",
                 "The object is not valid UTF-8 at byte %llu; S3 Select "
                 "reads UTF-8 only.", (unsigned long long)(offset + at));
        at += n;
    }
}

/* --------------------------------------------------------------- gzip */

/* A GZIP object (RFC 1952 members, one after another, each RFC 1951
 * deflate data) inflated as the scanner reads it.  Output is made a
 * symbol at a time into the reader's buffer, so memory is the 32 KiB
 * window whatever the ratio.  Errors are the Python engine's:
 * TruncatedInput for data that ends early, InvalidCompressionFormat for
 * anything else wrong (a CRC or length that does not match, too). */

#define WINDOW (1u << 15)
/* Codes up to this many bits are decoded by one table lookup. */
#define FAST_BITS 9

typedef struct {
    uint16_t count[16];  /* codes of each length */
    uint16_t symbol[288];
    /* By the next FAST_BITS input bits: symbol << 4 | code length, or 0
     * for a longer code. */
    uint16_t fast[1 << FAST_BITS];
} Huffman;

enum { Z_MEMBER, Z_BLOCK, Z_STORED, Z_CODES, Z_TRAILER, Z_END };

typedef struct {
    uchar raw[READ_SIZE];
    size_t raw_len, raw_at;
    int raw_end;
    uint32_t bits;
    int bit_count;
    uchar window[WINDOW];
    uint64_t produced;   /* bytes of this member so far */
    int state, final;
    size_t stored_left;
    Huffman lengths, distances;
    size_t copy_left, copy_distance;
    uint32_t crc;
} Gzip;

static Gzip *gz;

static void gzip_invalid(const char *why) {
    fail("InvalidCompressionFormat", "The object is not valid GZIP data: %s.",
         why);
}

static void gzip_truncated(void) {
    fail("TruncatedInput", "The GZIP data ends before its end marker.");
}

/* The next compressed byte, or -1 at the end of the object. */
static int raw_byte(void) {
    if (gz->raw_at == gz->raw_len) {
        if (gz->raw_end)
            return -1;
        ssize_t got;
        do {
            got = read(in.fd, gz->raw, READ_SIZE);
        } while (got < 0 && errno == EINTR);
        if (got < 0) {
            perror("selectscan: reading " INPUT_PATH);
            exit(1);
        }
        bytes_scanned += (uint64_t)got;
        tick();
        gz->raw_len = (size_t)got;
        gz->raw_at = 0;
        if (!got) {
            gz->raw_end = 1;
            return -1;
        }
    }
    return gz->raw[gz->raw_at++];
}

/* At least ``need`` bits in the bit buffer (up to 32 when ``ahead``, as
 * the input allows); 0 if the input ends first. */
static int load_bits(int need, int ahead) {
    while (gz->bit_count < need || (ahead && gz->bit_count <= 24)) {
        int byte;
        if (gz->raw_at < gz->raw_len)
            byte = gz->raw[gz->raw_at++];
        else if ((byte = raw_byte()) < 0)
            return gz->bit_count >= need;
        gz->bits |= (uint32_t)byte << gz->bit_count;
        gz->bit_count += 8;
    }
    return 1;
}

static uint32_t bits(int need) {
    if (gz->bit_count < need && !load_bits(need, 0))
        gzip_truncated();
    uint32_t value = gz->bits & ((1u << need) - 1);
    gz->bits >>= need;
    gz->bit_count -= need;
    return value;
}

/* To the next byte boundary of the input. */
static void align(void) {
    int partial = gz->bit_count & 7;
    gz->bits >>= partial;
    gz->bit_count -= partial;
}

/* A whole byte of the member's framing (or of a stored block), after
 * those already in the bit buffer. */
static uchar framing_byte(uint32_t *header_crc) {
    int byte;
    if (gz->bit_count >= 8) {
        byte = (int)(gz->bits & 0xFF);
        gz->bits >>= 8;
        gz->bit_count -= 8;
    } else if ((byte = raw_byte()) < 0) {
        gzip_truncated();
    }
    if (header_crc) {
        uchar b = (uchar)byte;
        *header_crc = crc32_update(*header_crc, &b, 1);
    }
    return (uchar)byte;
}

static void gzip_header(void) {
    /* Checked two bytes at a time, as zlib does: a member cut short in
     * them is TruncatedInput, whatever the first byte. */
    uint32_t crc = 0;
    uchar id1 = framing_byte(&crc), id2 = framing_byte(&crc);
    if (id1 != 0x1F || id2 != 0x8B)
        gzip_invalid("incorrect header check");
    uchar method = framing_byte(&crc), flags = framing_byte(&crc);
    if (method != 8)
        gzip_invalid("unknown compression method");
    if (flags & 0xE0)
        gzip_invalid("unknown header flags set");
    for (int i = 0; i < 6; i++) /* time, extra flags, system */
        framing_byte(&crc);
    if (flags & 4) {
        size_t extra = framing_byte(&crc);
        extra |= (size_t)framing_byte(&crc) << 8;
        while (extra--)
            framing_byte(&crc);
    }
    for (int field = 8; field <= 16; field *= 2) /* name, comment */
        if (flags & field)
            while (framing_byte(&crc))
                ;
    if (flags & 2) {
        uint32_t expected = crc & 0xFFFF;
        uint32_t stored = framing_byte(NULL);
        stored |= (uint32_t)framing_byte(NULL) << 8;
        if (stored != expected)
            gzip_invalid("header crc mismatch");
    }
    gz->produced = 0;
    gz->crc = 0;
    gz->state = Z_BLOCK;
}

/* Canonical Huffman codes from their lengths; 0 unless complete (or a
 * single code, which deflate allows for distances). */
static int build(Huffman *h, const uchar *length, int n, int incomplete_ok) {
    uint16_t offsets[16];
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++)
        h->count[length[i]]++;
    if (h->count[0] == n)
        return incomplete_ok;
    int left = 1;
    for (int len = 1; len < 16; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0)
            return 0; /* over-subscribed */
    }
    offsets[1] = 0;
    for (int len = 1; len < 15; len++)
        offsets[len + 1] = (uint16_t)(offsets[len] + h->count[len]);
    for (int i = 0; i < n; i++)
        if (length[i])
            h->symbol[offsets[length[i]]++] = (uint16_t)i;
    /* The table: codes are canonical (by length, then symbol) and come
     * first bit first, so a code's entries are its bits reversed. */
    memset(h->fast, 0, sizeof h->fast);
    int next[16], code = 0;
    for (int len = 1; len < 16; len++) {
        code = (code + (len > 1 ? h->count[len - 1] : 0)) << 1;
        next[len] = code;
    }
    for (int i = 0; i < n; i++) {
        int len = length[i];
        if (!len)
            continue;
        int value = next[len]++, reversed = 0;
        if (len > FAST_BITS)
            continue;
        for (int b = 0; b < len; b++)
            reversed |= ((value >> b) & 1) << (len - 1 - b);
        for (int e = reversed; e < (1 << FAST_BITS); e += 1 << len)
            h->fast[e] = (uint16_t)(i << 4 | len);
    }
    return left == 0 || incomplete_ok;
}

static int decode(const Huffman *h) {
    if (gz->bit_count < FAST_BITS)
        load_bits(0, 1);
    if (gz->bit_count >= FAST_BITS) {
        uint16_t entry = h->fast[gz->bits & ((1u << FAST_BITS) - 1)];
        if (entry) {
            gz->bits >>= entry & 15;
            gz->bit_count -= entry & 15;
            return entry >> 4;
        }
    }
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; len++) {
        code |= (int)bits(1);
        int count = h->count[len];
        if (code - count < first)
            return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    gzip_invalid("invalid code");
    return -1;
}

static void fixed_codes(void) {
    uchar length[288 + 30];
    int i = 0;
    for (; i < 144; i++) length[i] = 8;
    for (; i < 256; i++) length[i] = 9;
    for (; i < 280; i++) length[i] = 7;
    for (; i < 288; i++) length[i] = 8;
    build(&gz->lengths, length, 288, 0);
    for (i = 0; i < 30; i++) length[i] = 5;
    build(&gz->distances, length, 30, 0);
}

static void dynamic_codes(void) {
    static const uchar order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                    11, 4, 12, 3, 13, 2, 14, 1, 15};
    uchar length[320];
    int literals = (int)bits(5) + 257, distances = (int)bits(5) + 1;
    int codes = (int)bits(4) + 4;
    if (literals > 286 || distances > 30)
        gzip_invalid("too many length or distance symbols");
    memset(length, 0, sizeof length);
    for (int i = 0; i < codes; i++)
        length[order[i]] = (uchar)bits(3);
    Huffman code_lengths;
    if (!build(&code_lengths, length, 19, 0))
        gzip_invalid("invalid code lengths set");
    for (int at = 0; at < literals + distances;) {
        int symbol = decode(&code_lengths);
        if (symbol < 16) {
            length[at++] = (uchar)symbol;
            continue;
        }
        uchar repeat = 0;
        int times;
        if (symbol == 16) {
            if (!at)
                gzip_invalid("invalid bit length repeat");
            repeat = length[at - 1];
            times = 3 + (int)bits(2);
        } else if (symbol == 17) {
            times = 3 + (int)bits(3);
        } else {
            times = 11 + (int)bits(7);
        }
        if (at + times > literals + distances)
            gzip_invalid("invalid bit length repeat");
        while (times--)
            length[at++] = repeat;
    }
    if (!length[256])
        gzip_invalid("invalid code -- missing end-of-block");
    if (!build(&gz->lengths, length, literals, 0))
        gzip_invalid("invalid literal/lengths set");
    if (!build(&gz->distances, length + literals, distances, 1))
        gzip_invalid("invalid distances set");
}

static void put(uchar *out, size_t *made, uchar byte) {
    out[(*made)++] = byte;
    gz->window[gz->produced++ & (WINDOW - 1)] = byte;
}

/* Up to ``room`` (at least 258) inflated bytes into ``out``; 0 at the end
 * of the object. */
static size_t inflate_some(uchar *out, size_t room) {
    static const uint16_t length_base[29] = {
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51,
        59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const uchar length_extra[29] = {
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4,
        4, 5, 5, 5, 5, 0};
    static const uint16_t distance_base[30] = {
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
        513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
        24577};
    static const uchar distance_extra[30] = {
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9,
        10, 10, 11, 11, 12, 12, 13, 13};
    size_t made = 0, member_from = 0; /* this member's bytes in out */
    while (made + 258 <= room) {
        switch (gz->state) {
        case Z_MEMBER:
            if (gz->bit_count < 8 && gz->raw_at == gz->raw_len) {
                int byte = raw_byte(); /* anything left is another member */
                if (byte < 0) {
                    gz->state = Z_END;
                    continue;
                }
                gz->raw_at--;
            }
            gzip_header();
            continue;
        case Z_BLOCK: {
            if (gz->final) {
                align();
                gz->state = Z_TRAILER;
                continue;
            }
            gz->final = (int)bits(1);
            uint32_t type = bits(2);
            if (type == 0) {
                align();
                size_t len = framing_byte(NULL);
                len |= (size_t)framing_byte(NULL) << 8;
                size_t inverse = framing_byte(NULL);
                inverse |= (size_t)framing_byte(NULL) << 8;
                if (len != (~inverse & 0xFFFF))
                    gzip_invalid("invalid stored block lengths");
                gz->stored_left = len;
                gz->state = Z_STORED;
            } else if (type == 1) {
                fixed_codes();
                gz->state = Z_CODES;
            } else if (type == 2) {
                dynamic_codes();
                gz->state = Z_CODES;
            } else {
                gzip_invalid("invalid block type");
            }
            continue;
        }
        case Z_STORED:
            if (!gz->stored_left) {
                gz->state = Z_BLOCK;
                continue;
            }
            put(out, &made, framing_byte(NULL));
            gz->stored_left--;
            continue;
        case Z_CODES: {
            if (gz->copy_left) {
                while (gz->copy_left && made < room) {
                    put(out, &made, gz->window[(gz->produced - gz->copy_distance) &
                                               (WINDOW - 1)]);
                    gz->copy_left--;
                }
                continue;
            }
            int symbol = decode(&gz->lengths);
            if (symbol < 256) {
                put(out, &made, (uchar)symbol);
                continue;
            }
            if (symbol == 256) {
                gz->state = Z_BLOCK;
                continue;
            }
            symbol -= 257;
            if (symbol >= 29)
                gzip_invalid("invalid literal/length code");
            size_t len = length_base[symbol] + bits(length_extra[symbol]);
            int code = decode(&gz->distances);
            if (code >= 30)
                gzip_invalid("invalid distance code");
            size_t distance = distance_base[code] + bits(distance_extra[code]);
            if (distance > gz->produced || distance > WINDOW)
                gzip_invalid("invalid distance too far back");
            gz->copy_left = len;
            gz->copy_distance = distance;
            continue;
        }
        case Z_TRAILER: {
            gz->crc = crc32_update(gz->crc, out + member_from, made - member_from);
            member_from = made;
            uint32_t crc = 0, size = 0;
            for (int i = 0; i < 4; i++)
                crc |= (uint32_t)framing_byte(NULL) << (8 * i);
            for (int i = 0; i < 4; i++)
                size |= (uint32_t)framing_byte(NULL) << (8 * i);
            if (crc != gz->crc)
                gzip_invalid("incorrect data check");
            if (size != (uint32_t)gz->produced)
                gzip_invalid("incorrect length check");
            gz->final = 0;
            gz->state = Z_MEMBER;
            continue;
        }
        default:
            return made;
        }
    }
    gz->crc = crc32_update(gz->crc, out + member_from, made - member_from);
    return made;
}

/* Reads more of the input; 0 at its end. */
static int fill(void) {
    if (in.eof)
        return 0;
    if (in.head > 0 && in.cap - in.tail < READ_SIZE) {
        size_t keep = in.tail - in.head;
        memmove(in.buf, in.buf + in.head, keep);
        in.base += in.head;
        in.searched -= in.head;
        in.tail = keep;
        in.head = 0;
    }
    while (in.cap - in.tail < READ_SIZE) {
        in.cap = in.cap ? in.cap * 2 : 4 * READ_SIZE;
        in.buf = checked(realloc(in.buf, in.cap));
    }
    ssize_t got;
    if (plan.gzip) {
        got = (ssize_t)inflate_some(in.buf + in.tail, READ_SIZE);
    } else {
        do {
            got = read(in.fd, in.buf + in.tail, READ_SIZE);
        } while (got < 0 && errno == EINTR);
        if (got < 0) {
            perror("selectscan: reading " INPUT_PATH);
            exit(1);
        }
        bytes_scanned += (uint64_t)got;
    }
    in.tail += (size_t)got;
    bytes_processed += (uint64_t)got;
    if (!got)
        in.eof = 1;
    tick();
    return got > 0;
}

/* Moves to the object's offset ``to`` (never backwards). */
static void skip_to(uint64_t to) {
    uint64_t at = in.base + in.head;
    if (to <= at)
        return;
    if (to <= in.base + in.tail) {
        in.head = (size_t)(to - in.base);
        if (in.searched < in.head)
            in.searched = in.head;
        return;
    }
    if (in.seekable && lseek(in.fd, (off_t)to, SEEK_SET) == (off_t)to) {
        in.base = to;
        in.head = in.tail = in.searched = 0;
        return;
    }
    while (in.base + in.tail < to) {
        in.head = in.tail;
        if (!fill())
            return;
    }
    in.head = (size_t)(to - in.base);
    in.searched = in.head;
}

static uchar byte_at(uint64_t offset, int *found) {
    skip_to(offset);
    while (in.base + in.tail <= offset)
        if (!fill()) {
            *found = 0;
            return 0;
        }
    *found = 1;
    return in.buf[offset - in.base];
}

typedef struct {
    const uchar *data;
    size_t len;
    uint64_t offset; /* of its first byte in the object */
    int delimited;   /* ended by "\n", not by the end of the input */
    int quoted;      /* holds the quote character */
} Record;

/* Checks a record's UTF-8 (as it is read, so that the bytes skipped
 * before a range's first record are not) and notes its quotes. */
static void look_at(Record *r) {
    int ascii, quoted;
    ascii_and_has(r->data, r->len, plan.quote, &ascii, &quoted);
    r->quoted = plan.has_quote && quoted;
    if (!ascii)
        check_utf8(r->data, r->len, r->offset);
}

/* The next record (empty ones too); 0 at the end of the input. */
static int next_record(Record *r) {
    for (;;) {
        size_t from = in.searched > in.head ? in.searched : in.head;
        const uchar *nl = from < in.tail
                              ? find_byte(in.buf + from, in.tail - from, '\n') : NULL;
        if (nl) {
            size_t end = (size_t)(nl - in.buf);
            r->data = in.buf + in.head;
            r->len = end - in.head;
            r->offset = in.base + in.head;
            r->delimited = 1;
            in.head = end + 1;
            in.searched = in.head;
            if (r->len > MAX_RECORD)
                break;
            look_at(r);
            return 1;
        }
        in.searched = in.tail;
        if (in.tail - in.head > MAX_RECORD)
            break;
        if (!fill()) {
            if (in.head == in.tail)
                return 0;
            r->data = in.buf + in.head;
            r->len = in.tail - in.head;
            r->offset = in.base + in.head;
            r->delimited = 0;
            in.head = in.searched = in.tail;
            look_at(r);
            return 1;
        }
    }
    fail("OverMaxRecordSize",
         "A record in the input is longer than the limit of %d bytes.",
         MAX_RECORD);
    return 0;
}

/* ------------------------------------------------------------- fields */

typedef struct {
    const uchar **data; /* NULL: in ``unquoted`` at ``spare`` */
    size_t *len, *spare;
    long count, cap;
    Buffer unquoted; /* quoted fields that had doubled quotes, unescaped */
} Row;

static Row row;

static void add_field(const uchar *data, size_t len, size_t spare) {
    if (row.count == row.cap) {
        row.cap = row.cap ? row.cap * 2 : 64;
        row.data = checked(realloc(row.data, (size_t)row.cap * sizeof *row.data));
        row.len = checked(realloc(row.len, (size_t)row.cap * sizeof *row.len));
        row.spare = checked(realloc(row.spare, (size_t)row.cap * sizeof *row.spare));
    }
    row.data[row.count] = data;
    row.len[row.count] = len;
    row.spare[row.count] = spare;
    row.count++;
}

/* Bytes of the UTF-8 character that starts with ``lead``. */
static size_t char_length(uchar lead) {
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

/* Up to ``size - 1`` bytes of ``data`` for an error message, cut at
 * characters: an event's header must stay UTF-8 (the records are). */
static const char *snippet(char *out, size_t size, const uchar *data,
                           size_t len) {
    size_t start = 0, n;
    while (start < len && (data[start] & 0xC0) == 0x80)
        start++;
    n = len - start < size - 1 ? len - start : size - 1;
    if (n < len - start)
        while (n && (data[start + n] & 0xC0) == 0x80)
            n--;
    memcpy(out, data + start, n);
    out[n] = 0;
    return out;
}

static const char *near(const uchar *data, size_t len) {
    static char out[41];
    return snippet(out, sizeof out, data, len);
}

/* The quoted field whose opening quote is at r[at]: a doubled quote is one
 * quote.  Returns the offset just after its closing quote. */
static size_t quoted_field(const Record *r, size_t at) {
    const uchar *p = r->data;
    size_t n = r->len, cursor = at + 1;
    int copied = 0;
    size_t spare = row.unquoted.len;
    for (;;) {
        const uchar *close = find_byte(p + cursor, n - cursor, plan.quote);
        if (!close)
            break;
        size_t c = (size_t)(close - p);
        if (c + 1 < n && p[c + 1] == plan.quote) {
            buffer_add(&row.unquoted, p + cursor, c + 1 - cursor);
            cursor = c + 2;
            copied = 1;
            continue;
        }
        if (copied) {
            buffer_add(&row.unquoted, p + cursor, c - cursor);
            add_field(NULL, row.unquoted.len - spare, spare);
        } else {
            add_field(p + cursor, c - cursor, 0);
        }
        return c + 1;
    }
    if (r->delimited)
        fail("CSVEscapingRecordDelimiter",
             "A record delimiter is inside the quoted field starting '%s'; "
             "set AllowQuotedRecordDelimiter to TRUE to allow it.",
             near(p + at, n - at));
    fail("CSVParsingError",
         "The input ends inside the quoted field starting '%s'.",
         near(p + at, n - at));
    return 0;
}

/* The record's fields into ``row``: all of them when it has quotes (any
 * may be malformed), else the first ``plan.needed``. */
static void split(const Record *r) {
    const uchar *p = r->data;
    size_t n = r->len, at = 0;
    long wanted = r->quoted ? LONG_MAX : plan.needed;
    row.count = 0;
    row.unquoted.len = 0;
    while (row.count < wanted) {
        if (r->quoted && at < n && p[at] == plan.quote) {
            at = quoted_field(r, at);
            if (at == n)
                break;
            if (p[at] == plan.field) {
                at++;
                continue;
            }
            size_t from = at > 20 ? at - 20 : 0;
            char follower[5];
            fail("CSVUnescapedQuote",
                 "A closing quote is followed by '%s' instead of a field or "
                 "record delimiter, near '%s'.",
                 snippet(follower, sizeof follower, p + at,
                         char_length(p[at]) < n - at ? char_length(p[at])
                                                     : n - at),
                 near(p + from, n - from));
        }
        const uchar *next = find_byte(p + at, n - at, plan.field);
        if (!next) {
            add_field(p + at, n - at, 0);
            break;
        }
        add_field(p + at, (size_t)(next - p) - at, 0);
        at = (size_t)(next - p) + 1;
    }
    for (long i = 0; i < row.count; i++)
        if (!row.data[i])
            row.data[i] = row.unquoted.data + row.spare[i];
}

/* -------------------------------------------------------------- casts */

/* Python's str.strip() whitespace, as UTF-8: its length at p, or 0. */
static size_t space_at(const uchar *p, size_t avail) {
    uchar c = p[0];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F))
        return 1;
    if (c == 0xC2 && avail >= 2 && (p[1] == 0x85 || p[1] == 0xA0))
        return 2;
    if (avail < 3)
        return 0;
    if (c == 0xE1 && p[1] == 0x9A && p[2] == 0x80)
        return 3;
    if (c == 0xE2 && p[1] == 0x80 &&
        (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
        return 3;
    if (c == 0xE2 && p[1] == 0x81 && p[2] == 0x9F)
        return 3;
    if (c == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
        return 3;
    return 0;
}

static size_t space_before(const uchar *p, size_t len) {
    for (size_t width = 1; width <= 3 && width <= len; width++)
        if (space_at(p + len - width, width) == width)
            return width;
    return 0;
}

static void strip(const uchar **p, size_t *len) {
    size_t w;
    while (*len && (w = space_at(*p, *len))) {
        *p += w;
        *len -= w;
    }
    while (*len && (w = space_before(*p, *len)))
        *len -= w;
}

/* [+-]?(D+.?D*|.D+)([eE][+-]?D+)? over the whole text, ASCII digits. */
typedef struct {
    int negative;
    const uchar *digits; /* integer part */
    size_t int_len;
    const uchar *fraction;
    size_t fraction_len;
    int64_t exponent;
    int has_exponent;
} Number;

static int is_digit(uchar c) { return c >= '0' && c <= '9'; }

static int parse_number(const uchar *p, size_t len, Number *num) {
    size_t at = 0;
    memset(num, 0, sizeof *num);
    if (at < len && (p[at] == '+' || p[at] == '-'))
        num->negative = p[at++] == '-';
    num->digits = p + at;
    while (at < len && is_digit(p[at]))
        at++, num->int_len++;
    if (at < len && p[at] == '.') {
        at++;
        num->fraction = p + at;
        while (at < len && is_digit(p[at]))
            at++, num->fraction_len++;
    }
    if (!num->int_len && !num->fraction_len)
        return 0;
    if (at < len && (p[at] == 'e' || p[at] == 'E')) {
        at++;
        num->has_exponent = 1;
        int negative = 0;
        if (at < len && (p[at] == '+' || p[at] == '-'))
            negative = p[at++] == '-';
        if (at >= len || !is_digit(p[at]))
            return 0;
        while (at < len && is_digit(p[at])) {
            if (num->exponent < 1000000000LL)
                num->exponent = num->exponent * 10 + (p[at] - '0');
            at++;
        }
        if (negative)
            num->exponent = -num->exponent;
    }
    return at == len;
}

static void cast_failed(const uchar *text, size_t len, const char *target) {
    char shown[59];
    fail("CastFailed", "Cannot CAST STRING '%s%s to %s.",
         snippet(shown, sizeof shown, text, len), len > 58 ? "..." : "'",
         target);
}

/* CAST(text AS INT): an integer, or a decimal or exponent number truncated
 * toward zero; CastFailed outside 8 bytes or for anything else. */
static int64_t cast_int(const uchar *text, size_t len) {
    if (len && len <= 18) {
        int64_t value = 0;
        size_t i = 0;
        while (i < len && is_digit(text[i]))
            value = value * 10 + (text[i++] - '0');
        if (i == len)
            return value;
    }
    const uchar *p = text;
    size_t n = len;
    Number num;
    strip(&p, &n);
    if (!parse_number(p, n, &num))
        cast_failed(text, len, "INT");
    /* The value is 0.D * 10^point, D the integer and fraction digits. */
    int64_t point = (int64_t)num.int_len + num.exponent;
    size_t total = num.int_len + num.fraction_len;
    uint64_t magnitude = 0;
    int started = 0, significant = 0;
    for (int64_t i = 0; i < point; i++) {
        int d = (size_t)i < num.int_len ? num.digits[i] - '0'
                : (size_t)i < total ? num.fraction[i - (int64_t)num.int_len] - '0'
                : 0;
        if (!started && d == 0) {
            if ((size_t)i >= total)
                break; /* zeros all the way */
            continue;
        }
        started = 1;
        if (++significant > 19)
            cast_failed(text, len, "INT");
        magnitude = magnitude * 10 + (uint64_t)d;
    }
    if (significant == 19 && magnitude < 1000000000000000000ULL)
        cast_failed(text, len, "INT"); /* wrapped */
    if (num.negative) {
        if (magnitude > (uint64_t)INT64_MAX + 1)
            cast_failed(text, len, "INT");
        return (int64_t)(0 - magnitude);
    }
    if (magnitude > (uint64_t)INT64_MAX)
        cast_failed(text, len, "INT");
    return (int64_t)magnitude;
}

static Buffer number_text;

static int word_is(const uchar *p, size_t n, const char *word) {
    if (strlen(word) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uchar c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uchar)(c - 'A' + 'a');
        if (c != (uchar)word[i])
            return 0;
    }
    return 1;
}

/* CAST(text AS FLOAT): a number (rounded as Python's float() does), or
 * one of the words nan, inf, infinity (signed); CastFailed otherwise. */
static double cast_float(const uchar *text, size_t len) {
    const uchar *p = text;
    size_t n = len;
    Number num;
    strip(&p, &n);
    if (parse_number(p, n, &num)) {
        /* Up to 15 digits times a power of ten up to 22: both exact as
         * doubles, so one IEEE operation rounds correctly, as strtod
         * would, at a fraction of its cost. */
        size_t digits = num.int_len + num.fraction_len;
        int64_t scale = num.exponent - (int64_t)num.fraction_len;
        if (digits <= 15 && scale >= -22 && scale <= 22) {
            static const double powers[] = {
                1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21,
                1e22};
            int64_t mantissa = 0;
            for (size_t i = 0; i < num.int_len; i++)
                mantissa = mantissa * 10 + (num.digits[i] - '0');
            for (size_t i = 0; i < num.fraction_len; i++)
                mantissa = mantissa * 10 + (num.fraction[i] - '0');
            double value = scale < 0 ? (double)mantissa / powers[-scale]
                                     : (double)mantissa * powers[scale];
            return num.negative ? -value : value;
        }
        number_text.len = 0;
        buffer_add(&number_text, p, n);
        buffer_add(&number_text, "", 1);
        return strtod((char *)number_text.data, NULL);
    }
    if (word_is(p, n, "nan"))
        return NAN;
    static const char *const words[] = {"inf", "+inf", "infinity", "+infinity"};
    for (int i = 0; i < 4; i++)
        if (word_is(p, n, words[i]))
            return INFINITY;
    if (word_is(p, n, "-inf") || word_is(p, n, "-infinity"))
        return -INFINITY;
    cast_failed(text, len, "FLOAT");
    return 0;
}

/* A field that is no number, in a comparison with one. */
#define NOT_A_NUMBER 2

/* A field compared with an integer (no CAST): the field read as the
 * number it spells, exactly (an integer or a decimal, or a double when it
 * has an exponent); -1, 0, 1, or NOT_A_NUMBER. */
static int compare_with_integer(const uchar *text, size_t len, int64_t other) {
    const uchar *p = text;
    size_t n = len;
    Number num;
    strip(&p, &n);
    if (!parse_number(p, n, &num))
        return NOT_A_NUMBER;
    if (num.has_exponent) {
        double value = cast_float(text, len), bound = (double)other;
        return value < bound ? -1 : value > bound;
    }
    size_t at = 0;
    while (at < num.int_len && num.digits[at] == '0')
        at++;
    int fraction = 0;
    for (size_t i = 0; i < num.fraction_len; i++)
        fraction |= num.fraction[i] != '0';
    if (num.int_len - at > 19) /* beyond any int64 */
        return num.negative ? -1 : 1;
    __int128 whole = 0;
    for (; at < num.int_len; at++)
        whole = whole * 10 + (num.digits[at] - '0');
    if (num.negative)
        whole = -whole;
    if (!fraction)
        return whole < other ? -1 : whole > other;
    /* value = whole + a fraction toward the sign's side */
    if (!num.negative)
        return whole >= other ? 1 : -1;
    return whole <= other ? -1 : 1;
}

/* LIKE: the whole text matches the pattern (``%`` any run of
 * characters, ``_`` one character).  On a mismatch the last ``%`` takes
 * one more character, so the time is at most text × pattern. */
static int like(const uchar *text, size_t len, const LikeToken *pattern,
                long tokens) {
    size_t at = 0, star_at = 0;
    long next = 0, star = -1;
    for (;;) {
        if (next < tokens) {
            const LikeToken *k = &pattern[next];
            if (k->kind == L_ANY) {
                star = next++;
                star_at = at;
                continue;
            }
            if (k->kind == L_ONE && at < len) {
                at += char_length(text[at]);
                next++;
                continue;
            }
            if (k->kind == L_BYTES && len - at >= k->len &&
                !memcmp(text + at, k->bytes, k->len)) {
                at += k->len;
                next++;
                continue;
            }
        } else if (at == len) {
            return 1;
        }
        if (star < 0 || star_at >= len)
            return 0;
        star_at += char_length(text[star_at]);
        at = star_at;
        next = star + 1;
    }
}

/* --------------------------------------------------------- evaluation */

/* Strings by code point, which is how their UTF-8 bytes compare. */
static int compare_text(const uchar *a, size_t a_len, const uchar *b,
                        size_t b_len) {
    int cmp = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return cmp ? cmp : a_len < b_len ? -1 : a_len > b_len;
}

enum { FALSE_ = 0, TRUE_ = 1, UNKNOWN = -1 };

static int ordered(int op, int cmp) {
    switch (op) {
    case OP_EQ: return cmp == 0;
    case OP_NE: return cmp != 0;
    case OP_LT: return cmp < 0;
    case OP_LE: return cmp <= 0;
    case OP_GT: return cmp > 0;
    default: return cmp >= 0;
    }
}

static int float_test(int op, double a, double b) {
    switch (op) {
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    default: return a >= b;
    }
}

static int evaluate(const Expr *e) {
    switch (e->kind) {
    case X_AND:
    case X_OR: {
        /* Left to right, as the Python engine: a FALSE (AND) or a TRUE
         * (OR) decides, else UNKNOWN unless both are the other value. */
        int decisive = e->kind == X_AND ? FALSE_ : TRUE_;
        int left = evaluate(e->left);
        if (left == decisive)
            return decisive;
        int right = evaluate(e->right);
        if (right == decisive)
            return decisive;
        return left == !decisive && right == !decisive ? !decisive : UNKNOWN;
    }
    case X_NOT: {
        int value = evaluate(e->left);
        return value == UNKNOWN ? UNKNOWN : !value;
    }
    }
    long index = e->column->index;
    if (e->kind == X_MISSING)
        return index >= row.count; /* IS NULL, IS MISSING */
    if (index >= row.count)
        return UNKNOWN; /* MISSING */
    const uchar *text = row.data[index];
    size_t len = row.len[index];
    if (e->kind == X_LIKE)
        return like(text, len, e->pattern, e->pattern_len);
    if (e->kind == X_INT) {
        int64_t value = cast_int(text, len);
        return ordered(e->op, value < e->number ? -1 : value > e->number);
    }
    if (e->kind == X_FLOAT)
        return float_test(e->op, cast_float(text, len), (double)e->number);
    if (e->kind == X_NUMBER) {
        int cmp = compare_with_integer(text, len, e->number);
        if (cmp != NOT_A_NUMBER)
            return ordered(e->op, cmp);
        /* Values of different types: never equal, never ordered. */
        return e->op == OP_EQ ? FALSE_ : e->op == OP_NE ? TRUE_ : UNKNOWN;
    }
    return ordered(e->op, compare_text(text, len, (const uchar *)e->text,
                                       e->text_len));
}

/* ------------------------------------------------------------ binding */

static void bind_column(Column *c, const Row *header) {
    long found = -1;
    if (!c->by_name) {
        if (plan.header == HEADER_USE && c->index >= header->count)
            fail("InvalidColumnIndex", "No column %s, at %s.", c->name, c->at);
        return;
    }
    size_t name_len = strlen(c->name);
    Buffer titles = {0};
    int matches = 0;
    for (long i = 0; i < header->count; i++) {
        const uchar *title = header->data[i];
        size_t len = header->len[i];
        int same = len == name_len;
        for (size_t k = 0; same && k < len; k++) {
            uchar a = title[k], b = (uchar)c->name[k];
            if (!c->quoted) {
                if (a >= 'A' && a <= 'Z') a = (uchar)(a - 'A' + 'a');
                if (b >= 'A' && b <= 'Z') b = (uchar)(b - 'A' + 'a');
            }
            same = a == b;
        }
        if (!same)
            continue;
        if (matches++)
            buffer_text(&titles, ", ");
        buffer_add(&titles, title, len);
        if (found < 0)
            found = i;
    }
    if (!matches)
        fail("EvaluatorBindingDoesNotExist", "No column %s in the header, at %s.",
             c->name, c->at);
    if (matches > 1) {
        buffer_add(&titles, "", 1);
        fail("AmbiguousFieldName", "Column %s matches %s, at %s.", c->name,
             (char *)titles.data, c->at);
    }
    c->index = found;
}

/* ------------------------------------------------------------- output */

static int contains(const uchar *text, size_t len, const Buffer *what) {
    if (!what->len || what->len > len)
        return 0;
    if (what->len == 1)
        return memchr(text, what->data[0], len) != NULL;
    for (size_t i = 0; i + what->len <= len; i++)
        if (!memcmp(text + i, what->data, what->len))
            return 1;
    return 0;
}

static void output_field(Buffer *out, const uchar *text, size_t len) {
    int quote = plan.out_quote.len &&
                (plan.always_quote || contains(text, len, &plan.out_field) ||
                 contains(text, len, &plan.out_record) ||
                 memchr(text, '\r', len) || memchr(text, '\n', len) ||
                 contains(text, len, &plan.out_quote));
    if (!quote) {
        buffer_add(out, text, len);
        return;
    }
    buffer_add(out, plan.out_quote.data, plan.out_quote.len);
    size_t from = 0;
    for (size_t i = 0; i + plan.out_quote.len <= len;) {
        if (!memcmp(text + i, plan.out_quote.data, plan.out_quote.len)) {
            buffer_add(out, text + from, i - from);
            buffer_add(out, plan.out_escaped_quote.data, plan.out_escaped_quote.len);
            i += plan.out_quote.len;
            from = i;
        } else {
            i++;
        }
    }
    buffer_add(out, text + from, len - from);
    buffer_add(out, plan.out_quote.data, plan.out_quote.len);
}

/* A JSON string, as Python's json module writes it (non-ASCII as is). */
static void json_string(Buffer *out, const uchar *text, size_t len) {
    static const char hex[] = "0123456789abcdef";
    buffer_reserve(out, len + 2);
    out->data[out->len++] = '"';
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        uchar c = text[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buffer_add(out, text + from, i - from);
        from = i + 1;
        char escaped[7] = {'\\', (char)c, 0};
        switch (c) {
        case '"': case '\\': break;
        case '\n': escaped[1] = 'n'; break;
        case '\r': escaped[1] = 'r'; break;
        case '\t': escaped[1] = 't'; break;
        case '\b': escaped[1] = 'b'; break;
        case '\f': escaped[1] = 'f'; break;
        default:
            memcpy(escaped + 1, "u00", 3);
            escaped[4] = hex[c >> 4];
            escaped[5] = hex[c & 15];
            escaped[6] = 0;
        }
        buffer_text(out, escaped);
    }
    buffer_add(out, text + from, len - from);
    buffer_add(out, "\"", 1);
}

/* One value of a row: a string field, or a number's text (``number``:
 * JSON writes it bare).  A JSON row leaves MISSING out. */
static void output_value(Buffer *out, long *written, const Buffer *name,
                         const uchar *text, size_t len, int number) {
    if (plan.json) {
        if (!text)
            return; /* MISSING */
        if ((*written)++)
            buffer_add(out, ",", 1);
        json_string(out, name->data, name->len);
        buffer_add(out, ":", 1);
        if (number)
            buffer_add(out, text, len);
        else
            json_string(out, text, len);
        return;
    }
    if ((*written)++)
        buffer_add(out, plan.out_field.data, plan.out_field.len);
    output_field(out, text ? text : (const uchar *)"", text ? len : 0);
}

static void output_row_start(Buffer *out) {
    if (plan.json)
        buffer_add(out, "{", 1);
}

static void output_row_end(Buffer *out) {
    if (plan.json)
        buffer_add(out, "}", 1);
    buffer_add(out, plan.out_record.data, plan.out_record.len);
    events.complete = out->len;
    if (out->len >= EVENT_BYTES)
        flush_records();
}

static void float_text(double value, char *out);

/* A float's text in the output: JSON has no NaN or infinities (null). */
static void float_output(double value, char *out) {
    if (plan.json && !isfinite(value))
        strcpy(out, "null");
    else
        float_text(value, out);
}

static void project(void) {
    Buffer *out = &events.pending;
    long written = 0;
    output_row_start(out);
    if (plan.star) {
        for (long i = 0; i < row.count; i++) {
            Buffer positional = {0};
            const Buffer *name = &positional;
            if (plan.json && i < plan.title_count) {
                name = &plan.titles[i];
            } else if (plan.json) {
                char text[32];
                snprintf(text, sizeof text, "_%ld", i + 1);
                buffer_text(&positional, text);
            }
            output_value(out, &written, name, row.data[i], row.len[i], 0);
            free(positional.data);
        }
    } else {
        for (long i = 0; i < plan.projected_count; i++) {
            const Projected *item = &plan.projected[i];
            long index = item->column->index;
            char text[64];
            if (index >= row.count) { /* MISSING */
                output_value(out, &written, &plan.names[i], NULL, 0, 0);
                continue;
            }
            if (item->kind == P_TEXT) {
                output_value(out, &written, &plan.names[i], row.data[index],
                             row.len[index], 0);
                continue;
            }
            if (item->kind == P_INT)
                snprintf(text, sizeof text, "%lld",
                         (long long)cast_int(row.data[index], row.len[index]));
            else
                float_output(cast_float(row.data[index], row.len[index]), text);
            output_value(out, &written, &plan.names[i], (const uchar *)text,
                         strlen(text), 1);
        }
    }
    output_row_end(out);
}

static void accumulate(void) {
    for (long i = 0; i < plan.aggregate_count; i++) {
        Aggregate *a = &plan.aggregates[i];
        if (a->kind == A_COUNT_ALL) {
            a->count++;
            continue;
        }
        long index = a->column->index;
        if (index >= row.count)
            continue; /* MISSING is skipped */
        const uchar *text = row.data[index];
        size_t len = row.len[index];
        if (a->kind == A_COUNT) {
            a->count++;
        } else if (a->kind == A_SUM_INT) {
            int64_t value = cast_int(text, len), total;
            if (a->has && __builtin_add_overflow(a->total, value, &total)) {
                __int128 exact = (__int128)a->total + value;
                char digits[48];
                int at = 47, negative = exact < 0;
                unsigned __int128 m = negative ? -(unsigned __int128)exact
                                               : (unsigned __int128)exact;
                digits[at] = 0;
                do {
                    digits[--at] = (char)('0' + (int)(m % 10));
                    m /= 10;
                } while (m);
                if (negative)
                    digits[--at] = '-';
                fail("IntegerOverflow",
                     "Integer result %s does not fit 8 bytes.", digits + at);
            }
            a->total = a->has ? total : value;
            a->has = 1;
        } else if (a->kind == A_SUM_FLOAT || a->kind == A_AVG_FLOAT) {
            double value = cast_float(text, len);
            a->total_float = a->has ? a->total_float + value : value;
            a->has = 1;
            a->count++;
        } else if (a->kind >= A_MIN_INT && a->kind <= A_MAX_FLOAT) {
            /* Compared as Python compares: a NaN never beats, nor is
             * beaten. */
            int whole = a->kind == A_MIN_INT || a->kind == A_MAX_INT;
            int least = a->kind == A_MIN_INT || a->kind == A_MIN_FLOAT;
            int64_t integer = whole ? cast_int(text, len) : 0;
            double real = whole ? 0 : cast_float(text, len);
            int beats = whole ? (least ? integer < a->total : integer > a->total)
                              : (least ? real < a->total_float
                                       : real > a->total_float);
            if (!a->has || beats) {
                a->total = integer;
                a->total_float = real;
            }
            a->has = 1;
        } else { /* MIN, MAX of text */
            int cmp = a->has ? compare_text(text, len, a->best.data,
                                            a->best.len) : 0;
            if (!a->has || (a->kind == A_MIN_TEXT ? cmp < 0 : cmp > 0)) {
                a->best.len = 0;
                buffer_add(&a->best, text, len);
            }
            a->has = 1;
        }
    }
}

/* Python's repr() of a float, as the engine's CSV output writes it. */
static void float_text(double value, char *out) {
    if (value != value) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(value)) {
        strcpy(out, value > 0 ? "Infinity" : "-Infinity");
        return;
    }
    char scientific[40];
    int precision;
    for (precision = 1; precision <= 17; precision++) {
        snprintf(scientific, sizeof scientific, "%.*e", precision - 1, value);
        if (strtod(scientific, NULL) == value)
            break;
    }
    /* scientific: [-]d[.ddd]e[+-]XX */
    char digits[24];
    int count = 0, negative = scientific[0] == '-';
    char *p = scientific + negative;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[count++] = *p;
    int exponent = atoi(p + 1);
    while (count > 1 && digits[count - 1] == '0')
        count--;
    digits[count] = 0;
    char *o = out;
    if (negative)
        *o++ = '-';
    if (exponent < -4 || exponent >= 16) {
        *o++ = digits[0];
        if (count > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)count - 1);
            o += count - 1;
        }
        sprintf(o, "e%c%02d", exponent < 0 ? '-' : '+', abs(exponent));
        return;
    }
    if (exponent < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > exponent; i--)
            *o++ = '0';
        memcpy(o, digits, (size_t)count);
        o += count;
    } else {
        for (int i = 0; i <= exponent; i++)
            *o++ = i < count ? digits[i] : '0';
        *o++ = '.';
        if (count > exponent + 1) {
            memcpy(o, digits + exponent + 1, (size_t)(count - exponent - 1));
            o += count - exponent - 1;
        } else {
            *o++ = '0';
        }
    }
    *o = 0;
}

static void aggregate_row(void) {
    Buffer *out = &events.pending;
    long written = 0;
    output_row_start(out);
    for (long i = 0; i < plan.aggregate_count; i++) {
        Aggregate *a = &plan.aggregates[i];
        char text[64] = "null";
        int known = 1;
        if (a->has && (a->kind == A_MIN_TEXT || a->kind == A_MAX_TEXT)) {
            output_value(out, &written, &plan.names[i],
                         a->best.len ? a->best.data : (const uchar *)"",
                         a->best.len, 0);
            continue;
        }
        if (a->kind == A_COUNT_ALL || a->kind == A_COUNT)
            snprintf(text, sizeof text, "%llu", (unsigned long long)a->count);
        else if (!a->has)
            known = 0; /* NULL: an empty CSV field, JSON's null */
        else if (a->kind == A_SUM_INT || a->kind == A_MIN_INT ||
                 a->kind == A_MAX_INT)
            snprintf(text, sizeof text, "%lld", (long long)a->total);
        else if (a->kind == A_AVG_FLOAT)
            float_output(a->total_float / (double)a->count, text);
        else
            float_output(a->total_float, text);
        output_value(out, &written, &plan.names[i],
                     (const uchar *)(known || plan.json ? text : ""),
                     known || plan.json ? strlen(text) : 0, 1);
    }
    output_row_end(out);
}

/* --------------------------------------------------------------- scan */

/* A record the query reads: not empty, not a comment. */
static int wanted(const Record *r) {
    return r->len && !(plan.has_comment && r->data[0] == plan.comment);
}

/* Moves to the first record that starts at or after ``start`` (``floor``,
 * where the records after the header begin, is one), or to the end. */
static void skip_to_first_record(uint64_t start, uint64_t floor) {
    int found;
    if (start == floor || byte_at(start - 1, &found) == '\n') {
        skip_to(start);
        return;
    }
    if (!found)
        return; /* at the end */
    skip_to(start);
    for (;;) {
        size_t from = in.searched > in.head ? in.searched : in.head;
        const uchar *nl = from < in.tail
            ? find_byte(in.buf + from, in.tail - from, '\n') : NULL;
        if (nl) {
            in.head = in.searched = (size_t)(nl - in.buf) + 1;
            return;
        }
        in.head = in.searched = in.tail;
        if (!fill())
            return;
    }
}

int main(void) {
    crc_init();
    sent();
    read_plan();
    in.fd = open(INPUT_PATH, O_RDONLY);
    if (in.fd < 0) {
        perror("selectscan: " INPUT_PATH);
        return 1;
    }
    in.seekable = !plan.gzip && lseek(in.fd, 0, SEEK_CUR) == 0;
    if (plan.gzip)
        gz = checked(calloc(1, sizeof *gz));

    /* The header is the first record read; names are bound to it (in the
     * order the query names them, as the Python engine binds them) before
     * its fields' bytes can move. */
    Record r;
    uint64_t floor = 0;
    row.count = 0;
    plan.needed = LONG_MAX; /* the whole header */
    if (plan.header) {
        while (next_record(&r))
            if (wanted(&r)) {
                split(&r);
                break;
            }
        floor = in.base + in.head;
        if (plan.header == HEADER_USE && plan.json && plan.star) {
            plan.titles = checked(calloc((size_t)row.count + 1, sizeof(Buffer)));
            for (long i = 0; i < row.count; i++)
                buffer_add(&plan.titles[i], row.data[i], row.len[i]);
            plan.title_count = row.count;
        }
    }
    plan.needed = 0;
    for (long i = 0; i < plan.column_count; i++) {
        bind_column(&plan.columns[i], &row);
        if (plan.columns[i].index >= plan.needed)
            plan.needed = plan.columns[i].index + 1;
    }
    if (plan.star)
        plan.needed = LONG_MAX;
    if (plan.limit == 0)
        finish();

    skip_to_first_record(plan.start > floor ? plan.start : floor, floor);

    int64_t emitted = 0;
    while (next_record(&r)) {
        if (plan.has_stop && r.offset >= plan.stop)
            break;
        if (!wanted(&r))
            continue;
        split(&r);
        if (plan.where && evaluate(plan.where) != TRUE_)
            continue;
        if (plan.aggregate_count) {
            accumulate();
            continue;
        }
        project();
        if (++emitted == plan.limit)
            break;
    }
    if (plan.aggregate_count)
        aggregate_row();
    finish();
    return 0;
}
