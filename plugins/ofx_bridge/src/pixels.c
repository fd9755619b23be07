/* Pixel work of the Retime effect. OFX rows run bottom-up from bounds.y1; the engine's frames run
 * top-down, so packing walks rows from bounds.y2 - 1 down. */
#include "pixels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RISK_TINT 0.6
#define MARK_MIN_PIXELS 4
#define MARK_MAX_PIXELS 32

int image_width(const image_view *image) { return image->bounds.x2 - image->bounds.x1; }
int image_height(const image_view *image) { return image->bounds.y2 - image->bounds.y1; }

static char *row_at(const image_view *image, int y) {
    return (char *)image->data + (ptrdiff_t)(y - image->bounds.y1) * image->row_bytes;
}

static void *pixel_at(const image_view *image, int x, int y) {
    return row_at(image, y) + (ptrdiff_t)(x - image->bounds.x1) * 4 * image->depth_bytes;
}

static int contains(const OfxRectI *rect, int x, int y) {
    return x >= rect->x1 && x < rect->x2 && y >= rect->y1 && y < rect->y2;
}

static OfxRectI intersect(const OfxRectI *a, const OfxRectI *b) {
    OfxRectI r = {a->x1 > b->x1 ? a->x1 : b->x1, a->y1 > b->y1 ? a->y1 : b->y1, a->x2 < b->x2 ? a->x2 : b->x2,
                  a->y2 < b->y2 ? a->y2 : b->y2};
    if (r.x2 < r.x1) r.x2 = r.x1;
    if (r.y2 < r.y1) r.y2 = r.y1;
    return r;
}

/* ---- the float wire encoding ---------------------------------------------------------------
 *
 * Scaling a float pair by its largest value (what this bridge did first) let one bright pixel
 * decide the precision of the whole frame: a single 1000.0 left 0..1 with 63 steps, banding on
 * any scene-linear / HDR timeline, and negative values were clipped to 0. Now (pixels.h):
 *
 * - The linear core maps value v to code zero_code + slope * v. It always holds 0..1 (two values in
 *   0..1 are interpolated linearly, as before), and it reaches beyond 0..1 as far as the tail
 *   budgets allow at that slope: 4096 codes below 0, 8192 above 1. A pair in 0..1 uses all
 *   65535 codes for it (the encoding of the first version); a pair whose extremes fit the budgets
 *   is linear over its whole range (e.g. -0.05 .. 1.1); otherwise slope is 65535 - 8192 (57343)
 *   with highlights, 61439 with negatives, 53247 with both: a value in 0..1 comes back within
 *   half a step, 7.7e-6 .. 9.4e-6, whatever the extremes are.
 * - A tail carries magnitudes m beyond the knee k as k * (1 + ln(m / k)), which meets the core
 *   with the same value and slope; k is chosen so that the tail ends at low or high exactly on its
 *   budget. A value in a tail comes back within a relative 1 / (2 * slope * k): 7.6e-4 at
 *   high = 1000 (k = 0.0115), 1.2e-3 at 1e6. The ends of a tail are exact codes; in the core,
 *   high (and low) come back within the core's step.
 * - NaN travels as 0.0 and the infinities as high and low (float_to_wire); the extremes are
 *   taken over finite values only.
 *
 * The trade-off: the engine interpolates codes, not values. In the core (0..1, and out to the
 * knees) that is the same thing up to the step. Where a value lies in a tail, the in-between
 * value is interpolated in the logarithmic domain: two highlights mix about geometrically (1000
 * and 10 at t = 0.5 give about 96, not 505), and a highlight mixed with an ordinary value falls
 * far below the linear mix (1000 and 0.5 give about 0.82, not 500). With `flow` and `rife` the
 * warped frames mostly agree where a highlight is, so this shows where they disagree
 * (occlusions); a `blend` across a highlight fades it faster than a linear cross-fade. The local
 * fallback blend (blend_images) works on the floats themselves. */

#define WIRE_TOP 65535.0
#define WIRE_CODES ((size_t)65536)
#define WIRE_UPPER_TAIL_CODES 8192.0
#define WIRE_LOWER_TAIL_CODES 4096.0
#define KNEE_BISECTIONS 100

/* Distance from the core's edge, in core units, of a magnitude m beyond it (knee k), and back;
 * k = 0 (no extent on that side) leaves them linear. */
static double tail(double m, double k) { return m <= k || k <= 0.0 ? m : k * (1.0 + log(m / k)); }
static double untail(double y, double k) { return y <= k || k <= 0.0 ? y : k * exp(y / k - 1.0); }

/* The knee k with tail(extent, k) = reach: the core covers k and the tail the rest of `extent`
 * within `reach` core units; no tail (k = extent) when the whole extent fits. tail(extent, k)
 * grows with k from 0 (k -> 0) to extent (k = extent), so bisection finds it. */
static double knee_for(double extent, double reach) {
    if (extent <= reach) return extent;
    double below = 0.0, above = reach; /* tail(extent, k) >= k, so k <= reach */
    for (int i = 0; i < KNEE_BISECTIONS; i++) {
        double k = 0.5 * (below + above);
        if (tail(extent, k) < reach) below = k;
        else above = k;
    }
    return 0.5 * (below + above);
}

/* zero_code and slope when every part up to `up` above 1 is linear and the part below 0 (down to
 * `down`) is linear too, on `codes` codes; zero_code is rounded up to a whole code. */
static void linear_core(double down, double up, double codes, wire_encoding *e) {
    e->zero_code = ceil(down * codes / (1.0 + up + down));
    e->slope = (codes - e->zero_code) / (1.0 + up);
}

wire_encoding wire_encoding_between(double low, double high) {
    wire_encoding e;
    e.low = low < 0.0 && isfinite(low) ? low : 0.0;
    e.high = high > 1.0 && isfinite(high) ? high : 1.0;
    double down = e.low < 0.0 ? -e.low : 0.0, up = e.high - 1.0;

    /* no tail: linear from low to high */
    linear_core(down, up, WIRE_TOP, &e);
    if (e.zero_code <= WIRE_LOWER_TAIL_CODES && e.slope * up <= WIRE_UPPER_TAIL_CODES) {
        e.lower_knee = down;
        e.upper_knee = up;
        return e;
    }
    /* one tail, on whichever side needs it (the steeper slope when either would do) */
    wire_encoding upper_only = e, lower_only = e;
    int upper_fits = 0, lower_fits = 0;
    if (up > 0.0) {
        linear_core(down, 0.0, WIRE_TOP - WIRE_UPPER_TAIL_CODES, &upper_only);
        upper_fits = upper_only.zero_code <= WIRE_LOWER_TAIL_CODES;
        upper_only.lower_knee = down;
        upper_only.upper_knee = knee_for(up, WIRE_UPPER_TAIL_CODES / upper_only.slope);
    }
    if (down > 0.0) {
        lower_only.zero_code = WIRE_LOWER_TAIL_CODES;
        lower_only.slope = (WIRE_TOP - WIRE_LOWER_TAIL_CODES) / (1.0 + up);
        lower_fits = lower_only.slope * up <= WIRE_UPPER_TAIL_CODES;
        lower_only.lower_knee = knee_for(down, WIRE_LOWER_TAIL_CODES / lower_only.slope);
        lower_only.upper_knee = up;
    }
    if (upper_fits && (!lower_fits || upper_only.slope >= lower_only.slope)) return upper_only;
    if (lower_fits) return lower_only;
    /* both tails */
    e.zero_code = WIRE_LOWER_TAIL_CODES;
    e.slope = WIRE_TOP - WIRE_UPPER_TAIL_CODES - WIRE_LOWER_TAIL_CODES;
    e.lower_knee = knee_for(down, WIRE_LOWER_TAIL_CODES / e.slope);
    e.upper_knee = knee_for(up, WIRE_UPPER_TAIL_CODES / e.slope);
    return e;
}

static void finite_range(const image_view *image, double *low, double *high) {
    for (int y = image->bounds.y1; y < image->bounds.y2; y++) {
        const float *row = (const float *)row_at(image, y);
        for (int i = 0; i < image_width(image) * 4; i++) {
            if (!isfinite(row[i])) continue;
            if (row[i] < *low) *low = row[i];
            if (row[i] > *high) *high = row[i];
        }
    }
}

wire_encoding wire_encoding_for(const image_view *a, const image_view *b) {
    double low = 0.0, high = 1.0;
    if (a->depth_bytes == 4) {
        finite_range(a, &low, &high);
        finite_range(b, &low, &high);
    }
    return wire_encoding_between(low, high);
}

uint16_t float_to_wire(float value, const wire_encoding *e) {
    /* the common case first: 0..1 is in the core and its codes in range (NaN fails both tests) */
    if (value >= 0.0f && value <= 1.0f) return (uint16_t)(e->zero_code + e->slope * value + 0.5);
    double v = isnan(value) ? 0.0 : value, units;
    if (v < e->low) v = e->low; /* -inf included */
    if (v > e->high) v = e->high; /* +inf included */
    if (v < 0.0) units = -tail(-v, e->lower_knee);
    else if (v <= 1.0) units = v;
    else units = 1.0 + tail(v - 1.0, e->upper_knee);
    double code = floor(e->zero_code + e->slope * units + 0.5);
    return (uint16_t)(code < 0.0 ? 0.0 : code > WIRE_TOP ? WIRE_TOP : code);
}

float wire_to_float(uint16_t code, const wire_encoding *e) {
    double units = (code - e->zero_code) / e->slope, v;
    if (units < 0.0) v = -untail(-units, e->lower_knee);
    else if (units <= 1.0) v = units;
    else v = 1.0 + untail(units - 1.0, e->upper_knee);
    if (v < e->low) v = e->low;
    if (v > e->high) v = e->high;
    return (float)v;
}

void pack_wire(const image_view *image, const wire_encoding *encoding, void *wire) {
    int width = image_width(image), height = image_height(image);
    for (int r = 0; r < height; r++) {
        const char *row = row_at(image, image->bounds.y2 - 1 - r);
        if (image->depth_bytes == 1) {
            memcpy((uint8_t *)wire + (size_t)r * width * 4, row, (size_t)width * 4);
        } else if (image->depth_bytes == 2) {
            memcpy((uint16_t *)wire + (size_t)r * width * 4, row, (size_t)width * 8);
        } else {
            const float *source = (const float *)row;
            uint16_t *target = (uint16_t *)wire + (size_t)r * width * 4;
            for (int i = 0; i < width * 4; i++) target[i] = float_to_wire(source[i], encoding);
        }
    }
}

static void clear_pixel(image_view *out, int x, int y) { memset(pixel_at(out, x, y), 0, 4 * (size_t)out->depth_bytes); }

void unpack_wire(const void *wire, const OfxRectI *source_bounds, const wire_encoding *encoding, image_view *out,
                 const OfxRectI *window) {
    OfxRectI area = intersect(window, &out->bounds);
    int width = source_bounds->x2 - source_bounds->x1;
    /* a float frame with more values than there are codes decodes through a table of all codes */
    float *table = NULL;
    if (out->depth_bytes == 4 && (size_t)(area.x2 - area.x1) * (size_t)(area.y2 - area.y1) * 4 > WIRE_CODES &&
        (table = malloc(WIRE_CODES * sizeof *table)) != NULL)
        for (size_t code = 0; code < WIRE_CODES; code++) table[code] = wire_to_float((uint16_t)code, encoding);
    for (int y = area.y1; y < area.y2; y++) {
        for (int x = area.x1; x < area.x2; x++) {
            if (!contains(source_bounds, x, y)) {
                clear_pixel(out, x, y);
                continue;
            }
            size_t index = ((size_t)(source_bounds->y2 - 1 - y) * width + (size_t)(x - source_bounds->x1)) * 4;
            void *target = pixel_at(out, x, y);
            if (out->depth_bytes == 1) {
                memcpy(target, (const uint8_t *)wire + index, 4);
            } else if (out->depth_bytes == 2) {
                memcpy(target, (const uint16_t *)wire + index, 8);
            } else {
                const uint16_t *source = (const uint16_t *)wire + index;
                float *pixel = target;
                for (int c = 0; c < 4; c++) pixel[c] = table ? table[source[c]] : wire_to_float(source[c], encoding);
            }
        }
    }
    free(table);
}

void blend_images(const image_view *a, const image_view *b, double t, image_view *out, const OfxRectI *window) {
    OfxRectI area = intersect(window, &out->bounds);
    for (int y = area.y1; y < area.y2; y++) {
        for (int x = area.x1; x < area.x2; x++) {
            if (!contains(&a->bounds, x, y)) {
                clear_pixel(out, x, y);
                continue;
            }
            const void *pa = pixel_at(a, x, y), *pb = pixel_at(b, x, y);
            void *po = pixel_at(out, x, y);
            for (int c = 0; c < 4; c++) {
                if (out->depth_bytes == 1) {
                    double mixed = ((const uint8_t *)pa)[c] * (1.0 - t) + ((const uint8_t *)pb)[c] * t;
                    ((uint8_t *)po)[c] = (uint8_t)floor(mixed + 0.5);
                } else if (out->depth_bytes == 2) {
                    double mixed = ((const uint16_t *)pa)[c] * (1.0 - t) + ((const uint16_t *)pb)[c] * t;
                    ((uint16_t *)po)[c] = (uint16_t)floor(mixed + 0.5);
                } else {
                    ((float *)po)[c] = (float)(((const float *)pa)[c] * (1.0 - t) + ((const float *)pb)[c] * t);
                }
            }
        }
    }
}

void copy_image(const image_view *source, image_view *out, const OfxRectI *window) {
    OfxRectI area = intersect(window, &out->bounds);
    for (int y = area.y1; y < area.y2; y++)
        for (int x = area.x1; x < area.x2; x++) {
            if (contains(&source->bounds, x, y))
                memcpy(pixel_at(out, x, y), pixel_at(source, x, y), 4 * (size_t)out->depth_bytes);
            else
                clear_pixel(out, x, y);
        }
}

void overlay_risk(const float *risk, const OfxRectI *source_bounds, image_view *out, const OfxRectI *window) {
    OfxRectI area = intersect(window, &out->bounds);
    area = intersect(&area, source_bounds);
    int width = source_bounds->x2 - source_bounds->x1;
    double full = out->depth_bytes == 1 ? 255.0 : out->depth_bytes == 2 ? 65535.0 : 1.0;
    for (int y = area.y1; y < area.y2; y++) {
        for (int x = area.x1; x < area.x2; x++) {
            double value = risk[(size_t)(source_bounds->y2 - 1 - y) * width + (size_t)(x - source_bounds->x1)];
            if (!(value > 0.0)) continue;
            double weight = RISK_TINT * (value > 1.0 ? 1.0 : value);
            void *pixel = pixel_at(out, x, y);
            for (int c = 0; c < 3; c++) {
                double target = c == 0 ? full : 0.0;
                if (out->depth_bytes == 1) {
                    uint8_t *p = pixel;
                    p[c] = (uint8_t)floor(p[c] * (1.0 - weight) + target * weight + 0.5);
                } else if (out->depth_bytes == 2) {
                    uint16_t *p = pixel;
                    p[c] = (uint16_t)floor(p[c] * (1.0 - weight) + target * weight + 0.5);
                } else {
                    float *p = pixel;
                    p[c] = (float)(p[c] * (1.0 - weight) + target * weight);
                }
            }
        }
    }
}

void corner_mark(image_view *out, const OfxRectI *frame, const OfxRectI *window) {
    int width = frame->x2 - frame->x1, height = frame->y2 - frame->y1;
    int size = (width < height ? width : height) / 16;
    if (size < MARK_MIN_PIXELS) size = MARK_MIN_PIXELS;
    if (size > MARK_MAX_PIXELS) size = MARK_MAX_PIXELS;
    OfxRectI mark = {frame->x1, frame->y2 - size, frame->x1 + size, frame->y2};
    OfxRectI area = intersect(&mark, window);
    area = intersect(&area, &out->bounds);
    for (int y = area.y1; y < area.y2; y++) {
        for (int x = area.x1; x < area.x2; x++) {
            int border = x == mark.x1 || x == mark.x2 - 1 || y == mark.y1 || y == mark.y2 - 1;
            double rgba[4] = {border ? 0.0 : 1.0, 0.0, border ? 0.0 : 1.0, 1.0};
            void *pixel = pixel_at(out, x, y);
            for (int c = 0; c < 4; c++) {
                if (out->depth_bytes == 1) ((uint8_t *)pixel)[c] = (uint8_t)(rgba[c] * 255.0);
                else if (out->depth_bytes == 2) ((uint16_t *)pixel)[c] = (uint16_t)(rgba[c] * 65535.0);
                else ((float *)pixel)[c] = (float)rgba[c];
            }
        }
    }
}
