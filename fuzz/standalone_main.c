/* Driver for fuzz targets when libFuzzer is not available (the default build, gcc).
 *
 * Usage: fuzz_<name> [FILE|DIR]...   (no argument: one input from stdin)
 * Each file (directories are read one level deep, in name order) is fed to
 * LLVMFuzzerTestOneInput as it is, then as KM_FUZZ_ITERATIONS (default 2000) pseudo-random
 * mutations: bit flips, interesting bytes, byte insertions, deletions, chunk copies and
 * truncations. The generator is seeded from KM_FUZZ_SEED (default fixed) and the file's
 * content, so a run is reproducible. Each input is passed in a buffer of exactly its size so
 * AddressSanitizer catches reads past the end.
 *
 * When a target crashes, the input being run is written to ./crash-<pid> (or
 * $KM_FUZZ_CRASH_DIR/crash-<pid>) before the process dies, for replay with this same driver.
 * Built with -Db_sanitize=address,undefined this turns the seed corpus into a cheap fuzz
 * campaign inside `meson test --suite fuzz`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional hooks, as libFuzzer offers them. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

#define DEFAULT_ITERATIONS 2000
#define DEFAULT_SEED 0x4B494E454D41ull /* "KINEMA" */
#define MAX_INPUT_BYTES (16u << 20)
#define MAX_GROWTH 64

/* The input currently running, for the crash hooks (async-signal-safe access only). */
static const uint8_t *volatile current_data;
static volatile size_t current_size;
static char crash_path[512];

static void save_current_input(void)
{
    if (current_data == NULL)
        return;
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t done = 0;
        while (done < current_size) {
            ssize_t n = write(fd, current_data + done, current_size - done);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        close(fd);
        static const char msg[] = "\nfuzz: crashing input saved to ";
        (void)!write(2, msg, sizeof msg - 1);
        (void)!write(2, crash_path, strlen(crash_path));
        (void)!write(2, "\n", 1);
    }
    current_data = NULL;
}

static void crash_signal(int sig)
{
    save_current_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static uint64_t rng_state;

static uint64_t next_random(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t random_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(next_random() % n);
}

static uint64_t fnv1a(const uint8_t *data, size_t size)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 0x100000001B3ull;
    return h;
}

/* Bytes that matter to the text and binary formats Kinema parses. */
static const uint8_t interesting[] = {0,   1,   0x7F, 0x80, 0xFF, '\n', '\r', '\t', ' ', ',',
                                      ':', '-', '.',  '#',  '"',  '\'', '[',  ']',  '{', '}',
                                      '&', '*', '!',  '%',  '|',  '>',  '0',  '9',  'e', 'n'};

/* Apply 1..4 mutations to buf[0..*size) (capacity cap). */
static void mutate(uint8_t *buf, size_t *size, size_t cap)
{
    int count = 1 + (int)random_below(4);
    for (int m = 0; m < count; m++) {
        size_t n = *size;
        switch (random_below(7)) {
        case 0: /* flip one bit */
            if (n > 0)
                buf[random_below(n)] ^= (uint8_t)(1u << random_below(8));
            break;
        case 1: /* overwrite a byte with an interesting one */
            if (n > 0)
                buf[random_below(n)] = interesting[random_below(sizeof interesting)];
            break;
        case 2: { /* insert 1..8 bytes */
            size_t k = 1 + random_below(8);
            if (n + k > cap)
                break;
            size_t at = random_below(n + 1);
            memmove(buf + at + k, buf + at, n - at);
            for (size_t i = 0; i < k; i++)
                buf[at + i] = (next_random() & 1) ? interesting[random_below(sizeof interesting)]
                                                  : (uint8_t)next_random();
            *size = n + k;
            break;
        }
        case 3: { /* delete a range */
            if (n == 0)
                break;
            size_t at = random_below(n);
            size_t k = 1 + random_below(n - at < 16 ? n - at : 16);
            memmove(buf + at, buf + at + k, n - at - k);
            *size = n - k;
            break;
        }
        case 4: /* truncate */
            *size = random_below(n + 1);
            break;
        case 5: { /* copy a chunk over another place (repeats structure) */
            if (n < 2)
                break;
            size_t from = random_below(n), to = random_below(n);
            size_t k = 1 + random_below(n - (from > to ? from : to));
            memmove(buf + to, buf + from, k);
            break;
        }
        default: /* set a byte to a random value */
            if (n > 0)
                buf[random_below(n)] = (uint8_t)next_random();
            break;
        }
    }
}

/* Runs one input from an exactly-sized heap copy. */
static void run_one(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) {
        fprintf(stderr, "fuzz: out of memory\n");
        exit(2);
    }
    memcpy(copy, data, size);
    current_size = size;
    current_data = copy;
    LLVMFuzzerTestOneInput(copy, size);
    current_data = NULL;
    free(copy);
}

static int read_file(const char *path, uint8_t **out, size_t *out_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, size = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + size, 1, cap - size, f);
        size += n;
        if (n == 0)
            break;
        if (size == cap) {
            if (cap >= MAX_INPUT_BYTES) {
                fprintf(stderr, "fuzz: %s is larger than %u bytes\n", path, MAX_INPUT_BYTES);
                free(buf);
                buf = NULL;
                break;
            }
            uint8_t *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL)
        return -1;
    *out = buf;
    *out_size = size;
    return 0;
}

static unsigned long long total_runs;

static int fuzz_file(const char *path, long iterations, uint64_t seed)
{
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size) != 0)
        return -1;
    run_one(data, size);
    total_runs++;
    size_t cap = size + MAX_GROWTH;
    uint8_t *work = malloc(cap);
    if (work == NULL) {
        free(data);
        return -1;
    }
    rng_state = seed ^ fnv1a(data, size);
    for (long i = 0; i < iterations; i++) {
        size_t work_size = size;
        memcpy(work, data, size);
        mutate(work, &work_size, cap);
        run_one(work, work_size);
        total_runs++;
    }
    free(work);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file directly in dir, in name order. */
static int fuzz_directory(const char *dir, long iterations, uint64_t seed, int *files)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "fuzz: cannot open directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (grown == NULL)
                break;
            names = grown;
        }
        names[count] = strdup(e->d_name);
        if (names[count] != NULL)
            count++;
    }
    closedir(d);
    if (count > 0)
        qsort(names, count, sizeof *names, compare_names);
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (fuzz_file(path, iterations, seed) != 0)
                rc = -1;
            else
                (*files)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    long iterations = DEFAULT_ITERATIONS;
    const char *env = getenv("KM_FUZZ_ITERATIONS");
    if (env != NULL && *env != '\0') {
        char *end;
        iterations = strtol(env, &end, 10);
        if (*end != '\0' || iterations < 0) {
            fprintf(stderr, "fuzz: KM_FUZZ_ITERATIONS must be a non-negative integer\n");
            return 2;
        }
    }
    uint64_t seed = DEFAULT_SEED;
    env = getenv("KM_FUZZ_SEED");
    if (env != NULL && *env != '\0')
        seed = strtoull(env, NULL, 0);
    const char *crash_dir = getenv("KM_FUZZ_CRASH_DIR");
    snprintf(crash_path, sizeof crash_path, "%s/crash-%ld",
             crash_dir != NULL && *crash_dir ? crash_dir : ".", (long)getpid());
    if (__sanitizer_set_death_callback != NULL)
        __sanitizer_set_death_callback(save_current_input);
    signal(SIGSEGV, crash_signal);
    signal(SIGBUS, crash_signal);
    signal(SIGFPE, crash_signal);
    signal(SIGILL, crash_signal);
    signal(SIGABRT, crash_signal);
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int files = 0, rc = 0;
    if (argc < 2) {
        if (fuzz_file("/dev/stdin", 0, seed) != 0)
            return 2;
        files = 1;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz: %s: %s\n", argv[i], strerror(errno));
            rc = 2;
        } else if (S_ISDIR(st.st_mode)) {
            if (fuzz_directory(argv[i], iterations, seed, &files) != 0)
                rc = 2;
        } else if (fuzz_file(argv[i], iterations, seed) != 0) {
            rc = 2;
        } else {
            files++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("fuzz: %d input files, %llu runs (%ld mutations each), %.2f s\n", files, total_runs,
           iterations, seconds);
    if (files == 0) {
        fprintf(stderr, "fuzz: no input files (an empty corpus tests nothing)\n");
        rc = 2;
    }
    return rc;
}
