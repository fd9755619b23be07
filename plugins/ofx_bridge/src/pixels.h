/* Pixel work of the Retime effect: OFX image rows <-> packed wire frames, blend, overlay, mark. */
#ifndef CHRONOSCOPE_PIXELS_H
#define CHRONOSCOPE_PIXELS_H

#include <stddef.h>

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

/* The scale that maps float images into uint16 for the engine: the largest value in either, at
 * least 1, so that values above 1 (HDR) survive the trip. Integer images use 1. */
double wire_scale(const image_view *a, const image_view *b);

/* Packs `image` top row first into `wire` (uint8 for 8-bit, uint16 for 16-bit and float). */
void pack_wire(const image_view *image, double scale, void *wire);

/* Writes `wire` (the engine's frame, laid out like pack_wire's) into `out` over `window`;
 * pixels of the window outside `source_bounds` become transparent black. */
void unpack_wire(const void *wire, const OfxRectI *source_bounds, double scale, image_view *out,
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
