/* The bridge's side of the engine protocol (engine/server/protocol.py): one signed `synthesize`
 * request over a ZeroMQ DEALER socket, with a timeout, from any number of render threads. */
#ifndef CHRONOSCOPE_ENGINE_LINK_H
#define CHRONOSCOPE_ENGINE_LINK_H

#include <stddef.h>

#define LINK_PROTOCOL_VERSION "1.0"

typedef struct {
    int height, width;            /* pixels; every frame is RGBA */
    int bytes_per_channel;        /* 1 (uint8) or 2 (uint16) */
    const void *frame0, *frame1;  /* packed rows, top row first, height * width * 4 channels */
    double t;                     /* in (0, 1) */
    const char *backend;          /* "rife", "flow", "blend", ... */
    double timeout_s;             /* for the whole request */
    void *out_frame;              /* receives the frame: same size and depth as the inputs */
    float *out_risk;              /* receives the risk map, height * width; may be NULL */
} link_request;

/* 1 when the engine answered with a frame; 0 with a reason (no engine, timeout, error reply). */
int link_synthesize(const link_request *request, char *reason, size_t reason_size);

/* Close every socket and the ZeroMQ context (at unload; no request may be running). */
void link_shutdown(void);

#endif
