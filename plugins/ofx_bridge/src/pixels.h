/* Pixel work of the Retime effect: OFX image rows <-> packed wire frames, blend, overlay, mark. */
#ifndef CHRONOSCOPE_PIXELS_H
#define CHRONOSCOPE_PIXELS_H

#include <stddef.h>
#include <stdint.h>

#include "ofx_min.h"

/* One OFX RGBA image: rows from bounds.y1 (bottom) upward, row_bytes apart (may be negative). */
typedef struct {
    void *data;
    OfxRectI bounds;
    int row_bytes;
    int depth_bytes; /* 1 = 8-bit, 2 = 16-bit, 4 = float */
} image_view;

int image_width(const image_view *image);
int image_height(const image_view *image);

/* How float pixels travel on the engine's 16-bit wire (the engine synthesizes uint8 and uint16
 * frames only). One layout, made from the pair's finite extremes low <= 0 and high >= 1, serves
 * both frames of a pair and the frame that comes back. Codes are linear in the value, slope
 * `slope` codes per unit, over a core that always holds 0..1 and reaches down to -lower_knee and
 * up to 1 + upper_knee; beyond the core, logarithmic tails (continuous in value and slope) carry
 * the rest of the way to low and high. The tails have fixed code budgets, so 0..1 keeps at least
 * 53247 of the 65535 steps however extreme the highlights or negatives are, and all 65535 when
 * the pair lies in 0..1. See pixels.c for the figures and the trade-off (the engine interpolates
 * codes, so in the tails it interpolates logarithmically). */
typedef struct {
    double low;         /* the pair's smallest finite value, at most 0 */
    double high;        /* the pair's largest finite value, at least 1 */
    double zero_code;   /* the code of 0.0, a whole number */
    double slope;       /* codes per unit of value in the linear core */
    double lower_knee;  /* the core reaches down to -lower_knee (= -low when no tail) */
    double upper_knee;  /* and up to 1 + upper_knee (= high when no tail) */
} wire_encoding;

/* The layout for values between `low` (at most 0) and `high` (at least 1). */
wire_encoding wire_encoding_between(double low, double high);

/* The layout for the float pair a, b: their finite minimum and maximum (NaN and infinities are
 * left out). Integer images do not use it. */
wire_encoding wire_encoding_for(const image_view *a, const image_view *b);

/* One float value to its wire code, and a code back to its value. NaN becomes the code of 0.0;
 * values beyond [low, high] (the infinities included) are clamped to them. */
uint16_t float_to_wire(float value, const wire_encoding *encoding);
float wire_to_float(uint16_t code, const wire_encoding *encoding);

/* Packs `image` top row first into `wire` (uint8 for 8-bit, uint16 for 16-bit and float). */
void pack_wire(const image_view *image, const wire_encoding *encoding, void *wire);

/* Writes `wire` (the engine's frame, laid out like pack_wire's) into `out` over `window`;
 * pixels of the window outside `source_bounds` become transparent black. */
void unpack_wire(const void *wire, const OfxRectI *source_bounds, const wire_encoding *encoding, image_view *out,
                 const OfxRectI *window);

/* out = (1 - t) * a + t * b over `window`, rounded half up for integer depths (like the engine's
 * `blend`), exact in float. a and b share bounds and depth with each other. */
void blend_images(const image_view *a, const image_view *b, double t, image_view *out, const OfxRectI *window);

/* Copies `source` into `out` over `window` (outside the source: transparent black). */
void copy_image(const image_view *source, image_view *out, const OfxRectI *window);

/* Tints each pixel toward red by 0.6 * risk (risk packed top row first over `source_bounds`). */
void overlay_risk(const float *risk, const OfxRectI *source_bounds, image_view *out, const OfxRectI *window);

/* A small magenta square with a black border in the top-left corner of `frame`: this frame was
 * blended locally because the engine did not answer. */
void corner_mark(image_view *out, const OfxRectI *frame, const OfxRectI *window);

#endif
