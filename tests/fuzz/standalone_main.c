/*
 * Replays a fuzz target without libFuzzer: every file of the corpus
 * directory given as argv[1], then deterministic mutations of each seed
 * (every truncation length, single-bit flips, byte overwrites with
 * boundary values, appended garbage). A crash or sanitizer report fails the
 * test; the target itself asserts its own invariants. Exit 0 when every
 * input was processed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long g_runs;

static void run(const uint8_t *d, size_t n)
{
    LLVMFuzzerTestOneInput(d, n);
    g_runs++;
}

static void mutate_all(const uint8_t *seed, size_t n)
{
    uint8_t *b = malloc(n + 64);
    if (b == NULL)
        abort();
    for (size_t cut = 0; cut <= n; cut++)
        run(seed, cut);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, seed, n);
            b[i] ^= (uint8_t)(1u << bit);
            run(b, n);
        }
        static const uint8_t vals[] = {0x00, 0x7f, 0x80, 0xff};
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(b, seed, n);
            b[i] = vals[v];
            run(b, n);
        }
    }
    memcpy(b, seed, n);
    for (size_t i = 0; i < 64; i++)
        b[n + i] = (uint8_t)(i * 37 + 11);
    run(b, n + 64);
    free(b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (dir == NULL) {
        fprintf(stderr, "%s: no corpus directory %s\n", argv[0], argv[1]);
        return 1;
    }
    struct dirent *e;
    unsigned seeds = 0;
    run((const uint8_t *)"", 0);
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        uint8_t buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        mutate_all(buf, n);
        seeds++;
    }
    closedir(dir);
    if (seeds == 0) {
        fprintf(stderr, "%s: corpus %s is empty\n", argv[0], argv[1]);
        return 1;
    }
    printf("%s: %u seeds, %lu inputs, no crash\n", argv[0], seeds, g_runs);
    return 0;
}
