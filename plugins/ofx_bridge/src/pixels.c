/* Pixel work of the Retime effect. OFX rows run bottom-up from bounds.y1; the engine's frames run
 * top-down, so packing walks rows from bounds.y2 - 1 down. */
#include "pixels.h"

#include <math.h>
#include <stdint.h>
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

static double max_value(const image_view *image) {
    double largest = 0.0;
    for (int y = image->bounds.y1; y < image->bounds.y2; y++) {
        const float *row = (const float *)row_at(image, y);
        for (int i = 0; i < image_width(image) * 4; i++)
            if (row[i] > largest) largest = row[i]; /* NaN compares false and is skipped */
    }
    return largest;
}

double wire_scale(const image_view *a, const image_view *b) {
    if (a->depth_bytes != 4) return 1.0;
    double largest = max_value(a), other = max_value(b);
    if (other > largest) largest = other;
    return largest > 1.0 && isfinite(largest) ? largest : 1.0;
}

static uint16_t float_to_wire(float value, double scale) {
    double unit = value / scale;
    if (!(unit > 0.0)) return 0;
    if (unit >= 1.0) return 65535;
    return (uint16_t)floor(unit * 65535.0 + 0.5);
}

void pack_wire(const image_view *image, double scale, void *wire) {
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
            for (int i = 0; i < width * 4; i++) target[i] = float_to_wire(source[i], scale);
        }
    }
}

static void clear_pixel(image_view *out, int x, int y) { memset(pixel_at(out, x, y), 0, 4 * (size_t)out->depth_bytes); }

void unpack_wire(const void *wire, const OfxRectI *source_bounds, double scale, image_view *out,
                 const OfxRectI *window) {
    OfxRectI area = intersect(window, &out->bounds);
    int width = source_bounds->x2 - source_bounds->x1;
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
                for (int c = 0; c < 4; c++) pixel[c] = (float)(source[c] / 65535.0 * scale);
            }
        }
    }
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
