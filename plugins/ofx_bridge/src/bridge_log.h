/* Log lines of the bridge: to stderr, to <Chronoscope log folder>/ofx-bridge.log, and to the host. */
#ifndef CHRONOSCOPE_BRIDGE_LOG_H
#define CHRONOSCOPE_BRIDGE_LOG_H

#include <stddef.h>

typedef enum { BRIDGE_INFO, BRIDGE_WARNING, BRIDGE_ERROR } bridge_level;

/* The host's log (the OFX message suite), set at load; NULL to stop forwarding. */
typedef void (*bridge_log_sink)(bridge_level level, const char *line);
void bridge_log_set_sink(bridge_log_sink sink);

void bridge_log(bridge_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* <Chronoscope folder>/<leaf>: CHRONOSCOPE_HOME/<home_leaf> when set, else the platform's folder. */
int bridge_place(char *out, size_t size, const char *kind);

#endif
