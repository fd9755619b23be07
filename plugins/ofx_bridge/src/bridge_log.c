/* Log lines of the bridge. A host gives a plugin no console, so every line also goes to
 * <Chronoscope log folder>/ofx-bridge.log (the folder the engine logs to) and to the host's log. */
#include "bridge_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_FILE_NAME "ofx-bridge.log"
#define APP_NAME "Chronoscope"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bridge_log_sink host_sink;

void bridge_log_set_sink(bridge_log_sink sink) {
    pthread_mutex_lock(&log_lock);
    host_sink = sink;
    pthread_mutex_unlock(&log_lock);
}

/* Mirrors engine/places.py: CHRONOSCOPE_HOME/<kind>, else platformdirs' folders for "Chronoscope".
 * kind is "runtime" or "log". */
int bridge_place(char *out, size_t size, const char *kind) {
    const char *home = getenv("CHRONOSCOPE_HOME");
    int written;
    if (home && *home) {
        written = snprintf(out, size, "%s/%s", home, kind);
    } else if (strcmp(kind, "runtime") == 0) {
        const char *runtime = getenv("XDG_RUNTIME_DIR");
        struct stat info;
        char candidate[4096];
        if (runtime && *runtime && stat(runtime, &info) == 0 && S_ISDIR(info.st_mode)) {
            written = snprintf(out, size, "%s/%s", runtime, APP_NAME);
        } else {
            snprintf(candidate, sizeof candidate, "/run/user/%u", (unsigned)getuid());
            if (stat(candidate, &info) == 0 && S_ISDIR(info.st_mode)) {
                written = snprintf(out, size, "%s/%s", candidate, APP_NAME);
            } else {
                const char *tmp = getenv("TMPDIR");
                written = snprintf(out, size, "%s/runtime-%u/%s", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid(),
                                   APP_NAME);
            }
        }
    } else {
#ifdef __APPLE__
        const char *user_home = getenv("HOME");
        written = snprintf(out, size, "%s/Library/Logs/%s", user_home ? user_home : "", APP_NAME);
#else
        const char *state = getenv("XDG_STATE_HOME");
        const char *user_home = getenv("HOME");
        if (state && *state)
            written = snprintf(out, size, "%s/%s/log", state, APP_NAME);
        else
            written = snprintf(out, size, "%s/.local/state/%s/log", user_home ? user_home : "", APP_NAME);
#endif
    }
    return written > 0 && (size_t)written < size;
}

static void make_folders(const char *path) {
    char partial[4096];
    size_t size = strlen(path);
    if (size >= sizeof partial) return;
    memcpy(partial, path, size + 1);
    for (char *slash = partial + 1; *slash; slash++) {
        if (*slash != '/') continue;
        *slash = '\0';
        if (mkdir(partial, 0700) != 0 && errno != EEXIST) return;
        *slash = '/';
    }
    mkdir(partial, 0700);
}

static const char *level_name(bridge_level level) {
    return level == BRIDGE_ERROR ? "ERROR" : level == BRIDGE_WARNING ? "WARNING" : "INFO";
}

void bridge_log(bridge_level level, const char *format, ...) {
    char message[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);

    char stamp[64];
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);

    char line[2300];
    snprintf(line, sizeof line, "%s.%03ldZ %s chronoscope.ofx: %s", stamp, now.tv_nsec / 1000000L, level_name(level),
             message);

    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s\n", line);
    char folder[4096], path[4200];
    if (bridge_place(folder, sizeof folder, "log")) {
        make_folders(folder);
        snprintf(path, sizeof path, "%s/%s", folder, LOG_FILE_NAME);
        FILE *stream = fopen(path, "a");
        if (stream) {
            fprintf(stream, "%s\n", line);
            fclose(stream);
        }
    }
    bridge_log_sink sink = host_sink;
    pthread_mutex_unlock(&log_lock);
    if (sink) sink(level, line);
}
