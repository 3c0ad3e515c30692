/* 2D blob detection: threshold, 8-connected regions, intensity-weighted subpixel centroids,
 * area and roundness filters. Plain C, no allocation per frame.
 *
 * How it works, in one pass over the image:
 *   1. Each row is streamed once to flag the 64-pixel chunks holding a pixel brighter than
 *      the threshold (SSE2 when the compiler targets it, a plain loop otherwise, no
 *      data-dependent branch); the flagged chunks get an exact bitmask, and the runs of set
 *      bits are read off it. IR mocap images are almost all dark, so the cost stays close
 *      to reading the frame once.
 *   2. Each run is connected to the overlapping runs of the previous row (8-connectivity:
 *      runs touching diagonally are neighbours) with union-find over "components". A
 *      component carries exact integer sums of w, w*x, w*y, w*x^2, w*y^2, w*x*y with
 *      w = value - threshold, so merging two components is adding their sums.
 *   3. A component that receives no run in a row is finished: its centroid, area and
 *      roundness are computed, the filters applied, and its slot is recycled. So only the
 *      components alive in two rows need storage (at most width + 1), all preallocated.
 *   4. Blobs are sorted by (y, x). When more blobs pass the filters than the caller's
 *      capacity, the output array is kept as a max-heap of the first `capacity` ones.
 *
 * Coordinates: pixel (0,0) is the centre of the top-left pixel (formats.md). */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kinema/tracking.h"

/* Components finished and emitted get this last_row so that they are never emitted twice
 * (a finished component is still reachable from other runs of the previous row). */
#define FINISHED_ROW INT32_MAX

typedef struct detect_run {
    int32_t x0, x1; /* inclusive */
    int32_t component;
} detect_run;

typedef struct detect_component {
    /* Exact sums (w <= 255, x, y < 2^15: sum of w*x*y over a whole image < 2^63). */
    int64_t sum_w, sum_wx, sum_wy, sum_wxx, sum_wyy, sum_wxy;
    int32_t count;
    int32_t parent;   /* union-find; == own index for a root */
    int32_t last_row; /* last row that added a run; FINISHED_ROW once emitted */
    int32_t min_x, max_x, min_y, max_y;
} detect_component;

struct km_detector {
    km_detect_config cfg;
    int max_width, max_height;
    int run_capacity;          /* runs per row: (max_width + 1) / 2 */
    detect_run *runs_a, *runs_b;
    detect_component *components;
    int component_capacity;
    int32_t *free_slots;       /* stack of free component indices */
    int free_count;
    int32_t *merged;           /* components merged into another during the current row */
    int merged_count;
    uint64_t *row_bits;        /* bright-pixel mask of the current row, (max_width+63)/64 words */
    uint64_t *chunk_bits;      /* which 64-pixel chunks of row_bits are valid (non-dark) */
};

/* Per-run state of one km_detector_run call (kept off the detector to keep the hot
 * loop's loads local). */
typedef struct detect_output {
    km_blob *out;
    int capacity;
    int count;       /* blobs currently in out */
    long total;      /* blobs that passed the filters */
    int heap;        /* out is a max-heap (overflow happened) */
    int width, height;
    int threshold;
} detect_output;

km_detect_config km_detect_config_default(void)
{
    km_detect_config cfg;
    cfg.threshold = 64;
    cfg.min_area_px = 3;
    cfg.max_area_px = 4000;
    cfg.min_roundness = 0.4;
    cfg.max_blobs = 512;
    return cfg;
}

static km_status check_config(const km_detect_config *cfg)
{
    if (cfg->threshold < 0 || cfg->threshold > 255)
        return km_error(KM_ERR_INVALID_ARGUMENT, "detect: threshold %d outside [0, 255]",
                        cfg->threshold);
    if (cfg->min_area_px < 1 || cfg->max_area_px < cfg->min_area_px)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "detect: need 1 <= min_area_px (%d) <= max_area_px (%d)",
                        cfg->min_area_px, cfg->max_area_px);
    if (!(cfg->min_roundness >= 0.0 && cfg->min_roundness <= 1.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "detect: min_roundness %g outside [0, 1]",
                        cfg->min_roundness);
    if (cfg->max_blobs < 1)
        return km_error(KM_ERR_INVALID_ARGUMENT, "detect: max_blobs %d < 1", cfg->max_blobs);
    return KM_OK;
}

km_detector *km_detector_create(const km_detect_config *cfg, int max_width, int max_height,
                                km_status *err)
{
    km_status st = KM_OK;
    km_detect_config c = cfg ? *cfg : km_detect_config_default();
    if ((st = check_config(&c)) != KM_OK)
        goto fail;
    /* 2^15 keeps every coordinate product inside the exact int64 sums. */
    if (max_width < 1 || max_height < 1 || max_width > 32767 || max_height > 32767) {
        st = km_error(KM_ERR_INVALID_ARGUMENT, "detect: image size %dx%d outside [1, 32767]",
                      max_width, max_height);
        goto fail;
    }
    km_detector *d = calloc(1, sizeof *d);
    if (!d) {
        st = km_error(KM_ERR_NO_MEMORY, "detect: out of memory");
        goto fail;
    }
    d->cfg = c;
    d->max_width = max_width;
    d->max_height = max_height;
    d->run_capacity = (max_width + 1) / 2;
    /* Live components: those of the previous row's runs plus new ones of this row. */
    d->component_capacity = 2 * d->run_capacity + 2;
    d->runs_a = malloc((size_t)d->run_capacity * sizeof *d->runs_a);
    d->runs_b = malloc((size_t)d->run_capacity * sizeof *d->runs_b);
    d->components = malloc((size_t)d->component_capacity * sizeof *d->components);
    d->free_slots = malloc((size_t)d->component_capacity * sizeof *d->free_slots);
    d->merged = malloc((size_t)d->run_capacity * sizeof *d->merged);
    const size_t words = (size_t)(max_width + 63) / 64;
    d->row_bits = malloc(words * sizeof *d->row_bits);
    d->chunk_bits = malloc((words + 63) / 64 * sizeof *d->chunk_bits);
    if (!d->runs_a || !d->runs_b || !d->components || !d->free_slots || !d->merged ||
        !d->row_bits || !d->chunk_bits) {
        km_detector_destroy(d);
        st = km_error(KM_ERR_NO_MEMORY, "detect: out of memory for %dx%d buffers", max_width,
                      max_height);
        goto fail;
    }
    if (err)
        *err = KM_OK;
    return d;
fail:
    if (err)
        *err = st;
    return NULL;
}

void km_detector_destroy(km_detector *detector)
{
    if (!detector)
        return;
    free(detector->runs_a);
    free(detector->runs_b);
    free(detector->components);
    free(detector->free_slots);
    free(detector->merged);
    free(detector->row_bits);
    free(detector->chunk_bits);
    free(detector);
}

/* ---------------------------------------------------------------- row scan */

/* The bright pixels of one row: bit x % 64 of mask[x / 64] is set when row[x] > threshold,
 * valid only for the 64-pixel chunks whose bit is set in chunks[] (bit k % 64 of
 * chunks[k / 64] for chunk k); the other chunks are all dark. Returns non-zero when the row
 * has a bright pixel.
 *
 * No data-dependent branch while streaming the row: a loop that stops at the first bright
 * byte mispredicts at every blob edge and throws away the loads in flight (measured: ~1.5 us
 * per blob). Pass 1 only flags chunks, at the memory-read rate; pass 2 builds the exact mask
 * of the few flagged chunks, which are in L1 by then. */
static int row_mask(const uint8_t *row, int width, int threshold, uint64_t *mask,
                    uint64_t *chunks)
{
    const int full = width / 64; /* chunks of 64 pixels; then a tail of width % 64 */
    uint64_t any = 0;
#if defined(__SSE2__)
    const __m128i t = _mm_set1_epi8((char)(uint8_t)threshold);
    const __m128i zero = _mm_setzero_si128();
    for (int base = 0; base < full; base += 64) {
        const int end = full - base < 64 ? full - base : 64;
        uint64_t bits = 0;
        for (int i = 0; i < end; i++) {
            const uint8_t *p = row + 64 * (base + i);
            /* Saturating v - t is zero exactly where v <= t. */
            const __m128i a = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)p), t);
            const __m128i b = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)(p + 16)), t);
            const __m128i c = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)(p + 32)), t);
            const __m128i e = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)(p + 48)), t);
            const __m128i all = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, e));
            const uint64_t bright = _mm_movemask_epi8(_mm_cmpeq_epi8(all, zero)) != 0xFFFF;
            bits |= bright << i;
        }
        chunks[base / 64] = bits;
        any |= bits;
    }
    if (any) {
        for (int w = 0; w * 64 < full; w++) {
            uint64_t bits = chunks[w];
            while (bits) {
                const int k = w * 64 + __builtin_ctzll(bits);
                bits &= bits - 1;
                const uint8_t *p = row + 64 * k;
                const __m128i a = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)p), t);
                const __m128i b = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)(p + 16)), t);
                const __m128i c = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)(p + 32)), t);
                const __m128i e = _mm_subs_epu8(_mm_loadu_si128((const __m128i *)(p + 48)), t);
                const uint64_t dark =
                    (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, zero)) |
                    (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, zero)) << 16 |
                    (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(c, zero)) << 32 |
                    (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(e, zero)) << 48;
                mask[k] = ~dark;
            }
        }
    }
#else
    /* Plain loop the compiler can vectorise (NEON, ...). */
    for (int base = 0; base < full; base += 64) {
        const int end = full - base < 64 ? full - base : 64;
        uint64_t bits = 0;
        for (int i = 0; i < end; i++) {
            const uint8_t *p = row + 64 * (base + i);
            uint64_t m = 0;
            for (int j = 0; j < 64; j++)
                m |= (uint64_t)(p[j] > threshold) << j;
            mask[base + i] = m;
            bits |= (uint64_t)(m != 0) << i;
        }
        chunks[base / 64] = bits;
        any |= bits;
    }
#endif
    if (full * 64 < width) {
        /* Tail: never read past width (the last row may end the buffer). */
        if (full % 64 == 0)
            chunks[full / 64] = 0;
        uint64_t m = 0;
        for (int i = 0; full * 64 + i < width; i++)
            m |= (uint64_t)(row[full * 64 + i] > threshold) << i;
        mask[full] = m;
        chunks[full / 64] |= (uint64_t)(m != 0) << (full % 64);
        any |= m;
    }
    return any != 0;
}

/* Runs of set bits of the row mask, in increasing x, visiting only the flagged chunks.
 * Returns their number. Bits past width are clear, so a run never extends beyond the row. */
static int mask_runs(const uint64_t *mask, const uint64_t *chunks, int width, detect_run *runs)
{
    const int words = (width + 63) / 64;
    const int chunk_words = (words + 63) / 64;
    int n = 0;
    int in_run = 0;
    int32_t start = 0;
    int last = -2; /* last chunk visited */
    for (int cw = 0; cw < chunk_words; cw++) {
        uint64_t bits = chunks[cw];
        while (bits) {
            const int k = cw * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            const int32_t base = k * 64;
            if (in_run && k != last + 1) {
                /* The run filled chunk `last` to its end and the next chunk is dark. */
                runs[n].x0 = start;
                runs[n].x1 = last * 64 + 63;
                n++;
                in_run = 0;
            }
            last = k;
            uint64_t m = mask[k];
            if (in_run) {
                const uint64_t dark = ~m;
                if (dark == 0)
                    continue; /* the run goes on through this chunk */
                const int e = __builtin_ctzll(dark);
                runs[n].x0 = start;
                runs[n].x1 = base + e - 1;
                n++;
                in_run = 0;
                m &= ~0ull << e; /* e < 64: dark != 0 */
            }
            while (m) {
                const int b = __builtin_ctzll(m);
                const uint64_t dark = ~m & (~0ull << b);
                if (dark == 0) {
                    start = base + b;
                    in_run = 1;
                    break;
                }
                const int e = __builtin_ctzll(dark);
                runs[n].x0 = base + b;
                runs[n].x1 = base + e - 1;
                n++;
                m &= ~0ull << e;
            }
        }
    }
    if (in_run) {
        runs[n].x0 = start;
        runs[n].x1 = last * 64 + 63 < width - 1 ? last * 64 + 63 : width - 1;
        n++;
    }
    return n;
}

/* ---------------------------------------------------------- union-find */

static inline int32_t find_root(detect_component *comps, int32_t i)
{
    while (comps[i].parent != i) {
        comps[i].parent = comps[comps[i].parent].parent; /* path halving */
        i = comps[i].parent;
    }
    return i;
}

/* Merge root b into root a; returns a. */
static int32_t unite(km_detector *d, int32_t a, int32_t b)
{
    detect_component *ca = &d->components[a];
    const detect_component *cb = &d->components[b];
    ca->sum_w += cb->sum_w;
    ca->sum_wx += cb->sum_wx;
    ca->sum_wy += cb->sum_wy;
    ca->sum_wxx += cb->sum_wxx;
    ca->sum_wyy += cb->sum_wyy;
    ca->sum_wxy += cb->sum_wxy;
    ca->count += cb->count;
    if (cb->min_x < ca->min_x)
        ca->min_x = cb->min_x;
    if (cb->max_x > ca->max_x)
        ca->max_x = cb->max_x;
    if (cb->min_y < ca->min_y)
        ca->min_y = cb->min_y;
    if (cb->max_y > ca->max_y)
        ca->max_y = cb->max_y;
    d->components[b].parent = a;
    d->merged[d->merged_count++] = b;
    return a;
}

/* --------------------------------------------------------------- output */

static inline int blob_before(const km_blob *a, const km_blob *b)
{
    if (a->y != b->y)
        return a->y < b->y;
    if (a->x != b->x)
        return a->x < b->x;
    return a->intensity > b->intensity;
}

/* Max-heap on blob_before: the root is the blob that comes last. */
static void sift_down(km_blob *h, int n, int i)
{
    for (;;) {
        int largest = i;
        const int l = 2 * i + 1, r = l + 1;
        if (l < n && blob_before(&h[largest], &h[l]))
            largest = l;
        if (r < n && blob_before(&h[largest], &h[r]))
            largest = r;
        if (largest == i)
            return;
        const km_blob tmp = h[i];
        h[i] = h[largest];
        h[largest] = tmp;
        i = largest;
    }
}

static void heapify(km_blob *h, int n)
{
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(h, n, i);
}

/* In place, no allocation (glibc's qsort may allocate, so it is not used on the hot path).
 * Blobs are finished in raster order of their bottom row, so the list is nearly sorted and
 * an insertion sort is linear; it hands over to a heap sort if the input turns out not to be
 * nearly sorted (bounded work in every case). */
static void sort_blobs(km_blob *b, int n, int already_heap)
{
    if (!already_heap) {
        long moves = 0;
        const long budget = 16L * n;
        int i = 1;
        for (; i < n && moves <= budget; i++) {
            const km_blob v = b[i];
            int j = i;
            while (j > 0 && blob_before(&v, &b[j - 1])) {
                b[j] = b[j - 1];
                j--;
                moves++;
            }
            b[j] = v;
        }
        if (i >= n && moves <= budget)
            return;
        heapify(b, n);
    }
    for (int end = n - 1; end > 0; end--) {
        const km_blob tmp = b[0];
        b[0] = b[end];
        b[end] = tmp;
        sift_down(b, end, 0);
    }
}

static void emit(const km_detector *d, const detect_component *c, detect_output *o)
{
    if (c->count < d->cfg.min_area_px || c->count > d->cfg.max_area_px || c->sum_w <= 0)
        return;
    const double sw = (double)c->sum_w;
    const double cx = (double)c->sum_wx / sw;
    const double cy = (double)c->sum_wy / sw;
    /* Weighted covariance; + 1/12 because each pixel is a unit square, not a point (a
     * single pixel is round, a 1-pixel-wide line has a non-zero minor axis). */
    const double cxx = (double)c->sum_wxx / sw - cx * cx + 1.0 / 12.0;
    const double cyy = (double)c->sum_wyy / sw - cy * cy + 1.0 / 12.0;
    const double cxy = (double)c->sum_wxy / sw - cx * cy;
    const double half_trace = 0.5 * (cxx + cyy);
    const double disc = sqrt(0.25 * (cxx - cyy) * (cxx - cyy) + cxy * cxy);
    const double lambda_max = half_trace + disc;
    double lambda_min = half_trace - disc;
    if (lambda_min < 0.0)
        lambda_min = 0.0;
    const double roundness = lambda_max > 0.0 ? sqrt(lambda_min / lambda_max) : 1.0;
    if (roundness < d->cfg.min_roundness)
        return;

    km_blob b;
    memset(&b, 0, sizeof b); /* padding too: identical input gives identical bytes */
    b.x = cx;
    b.y = cy;
    b.area_px = (double)c->count;
    b.roundness = roundness;
    b.intensity = sw;
    b.min_x = c->min_x;
    b.min_y = c->min_y;
    b.max_x = c->max_x;
    b.max_y = c->max_y;
    b.flags = 0;
    if (c->min_x == 0 || c->min_y == 0 || c->max_x == o->width - 1 || c->max_y == o->height - 1)
        b.flags |= KM_BLOB_FLAG_BORDER;

    o->total++;
    if (o->count < o->capacity) {
        o->out[o->count++] = b;
        return;
    }
    if (o->capacity == 0)
        return;
    /* Full: keep the first `capacity` blobs in output order. */
    if (!o->heap) {
        heapify(o->out, o->count);
        o->heap = 1;
    }
    if (blob_before(&b, &o->out[0])) {
        o->out[0] = b;
        sift_down(o->out, o->count, 0);
    }
}

/* Emit and recycle every component of `runs` that did not continue into row y. */
static void finish_components(km_detector *d, const detect_run *runs, int n, int32_t y,
                              detect_output *o)
{
    detect_component *comps = d->components;
    for (int i = 0; i < n; i++) {
        const int32_t r = find_root(comps, runs[i].component);
        if (comps[r].last_row < y) {
            emit(d, &comps[r], o);
            comps[r].last_row = FINISHED_ROW;
            d->free_slots[d->free_count++] = r;
        }
    }
}

/* ----------------------------------------------------------------- run */

km_status km_detector_run(km_detector *detector, const uint8_t *image, int width, int height,
                          int stride, km_blob *out, int capacity, int *count)
{
    if (count)
        *count = 0;
    if (!detector || !image || !count || capacity < 0 || (capacity > 0 && !out))
        return km_error(KM_ERR_INVALID_ARGUMENT, "detect: NULL argument or negative capacity");
    if (width < 1 || height < 1 || width > detector->max_width ||
        height > detector->max_height || stride < width)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "detect: image %dx%d (stride %d) does not fit the detector's %dx%d",
                        width, height, stride, detector->max_width, detector->max_height);

    km_detector *d = detector;
    const int threshold = d->cfg.threshold;
    detect_output o = {out, capacity, 0, 0, 0, width, height, threshold};
    detect_component *comps = d->components;

    d->free_count = 0;
    for (int i = d->component_capacity - 1; i >= 0; i--)
        d->free_slots[d->free_count++] = i;

    detect_run *prev = d->runs_a, *cur = d->runs_b;
    int n_prev = 0;

    for (int32_t y = 0; y < height; y++) {
        const uint8_t *row = image + (size_t)y * (size_t)stride;
        const int any = row_mask(row, width, threshold, d->row_bits, d->chunk_bits);
        if (!any && n_prev == 0)
            continue; /* the common case: a dark row after a dark row */
        const int n_cur = any ? mask_runs(d->row_bits, d->chunk_bits, width, cur) : 0;

        d->merged_count = 0;
        int j = 0;
        for (int i = 0; i < n_cur; i++) {
            const int32_t x0 = cur[i].x0, x1 = cur[i].x1;
            /* Previous runs ending left of x0-1 touch neither this run nor later ones. */
            while (j < n_prev && prev[j].x1 < x0 - 1)
                j++;
            int32_t label = -1;
            for (int k = j; k < n_prev && prev[k].x0 <= x1 + 1; k++) {
                const int32_t r = find_root(comps, prev[k].component);
                if (label < 0)
                    label = r;
                else if (r != label)
                    label = unite(d, label, r);
            }
            if (label < 0) {
                /* Cannot run dry: live components <= runs of two rows (see create). */
                label = d->free_slots[--d->free_count];
                detect_component *c = &comps[label];
                memset(c, 0, sizeof *c);
                c->parent = label;
                c->min_x = x0;
                c->max_x = x1;
                c->min_y = y;
            }

            /* Sums of the run: w = value - threshold >= 1 on every run pixel. */
            int64_t s_w = 0, s_wx = 0, s_wxx = 0;
            for (int32_t x = x0; x <= x1; x++) {
                const int64_t w = (int64_t)row[x] - threshold;
                s_w += w;
                s_wx += w * x;
                s_wxx += w * x * x;
            }
            detect_component *c = &comps[label];
            c->sum_w += s_w;
            c->sum_wx += s_wx;
            c->sum_wy += s_w * y;
            c->sum_wxx += s_wxx;
            c->sum_wyy += s_w * y * y;
            c->sum_wxy += s_wx * y;
            c->count += x1 - x0 + 1;
            if (x0 < c->min_x)
                c->min_x = x0;
            if (x1 > c->max_x)
                c->max_x = x1;
            c->max_y = y;
            c->last_row = y;
            cur[i].component = label;
        }
        /* Labels given early in the row may have been merged since: point at the roots
         * before the merged slots are recycled. */
        for (int i = 0; i < n_cur; i++)
            cur[i].component = find_root(comps, cur[i].component);
        finish_components(d, prev, n_prev, y, &o);
        for (int i = 0; i < d->merged_count; i++)
            d->free_slots[d->free_count++] = d->merged[i];

        detect_run *tmp = prev;
        prev = cur;
        cur = tmp;
        n_prev = n_cur;
    }
    finish_components(d, prev, n_prev, height, &o);

    sort_blobs(out, o.count, o.heap);
    *count = o.count;
    if (o.total > o.count)
        return km_error(KM_ERR_CAPACITY, "detect: %ld blobs found, capacity %d; kept the first",
                        o.total, capacity);
    return KM_OK;
}
