/* Requests to the engine: connection file, libzmq (loaded at run time), signing, a socket pool.
 *
 * libzmq is opened with dlopen, so a host without it still loads the plugin (renders then fall
 * back to a frame blend, with a log line naming the library). Sockets live in a pool: a render
 * thread takes one, uses it alone, and gives it back; a socket whose request timed out is closed,
 * so a late answer can never be read as the next one. The connection file is checked on every
 * request (inode, size, mtime): when an engine restarts it writes a new file, and the pool's old
 * sockets are dropped, so the next render talks to the new engine.
 */
#include "engine_link.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge_log.h"
#include "json.h"
#include "sha256.h"

#define CONNECTION_FILE_NAME "engine.json"
#define MAX_CONNECTION_FILE_BYTES (64 * 1024)
#define MAX_POOLED_SOCKETS 32
#define MAX_REPLY_PARTS 16
#define SIGNATURE_HEX_BYTES (2 * SHA256_DIGEST_BYTES)

static const char DELIMITER[] = "<CHRONO|MSG>";

/* ---- libzmq, loaded at run time ------------------------------------------------------------ */

typedef struct {
    void *library;
    void *(*ctx_new)(void);
    int (*ctx_term)(void *);
    void *(*socket)(void *, int);
    int (*close)(void *);
    int (*setsockopt)(void *, int, const void *, size_t);
    int (*connect)(void *, const char *);
    int (*send)(void *, const void *, size_t, int);
    int (*msg_init)(zmq_msg_t *);
    int (*msg_recv)(zmq_msg_t *, void *, int);
    int (*msg_close)(zmq_msg_t *);
    void *(*msg_data)(zmq_msg_t *);
    size_t (*msg_size)(const zmq_msg_t *);
    int (*msg_more)(const zmq_msg_t *);
    int (*poll)(zmq_pollitem_t *, int, long);
    int (*errno_)(void);
    const char *(*strerror)(int);
} zmq_api;

static zmq_api zmq;

static int load_zmq(char *reason, size_t reason_size) {
    if (zmq.library) return 1;
    const char *names[] = {getenv("CHRONOSCOPE_LIBZMQ"), "libzmq.so.5", "libzmq.so", "libzmq.5.dylib"};
    void *library = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !library; i++)
        if (names[i] && *names[i]) library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(reason, reason_size, "libzmq could not be loaded (%s); install libzmq5 or set CHRONOSCOPE_LIBZMQ",
                 dlerror());
        return 0;
    }
#define BIND(field, symbol)                                                                   \
    do {                                                                                      \
        *(void **)(&zmq.field) = dlsym(library, symbol);                                      \
        if (!zmq.field) {                                                                     \
            snprintf(reason, reason_size, "libzmq lacks %s; ZeroMQ 4.x is needed", symbol);   \
            dlclose(library);                                                                 \
            memset(&zmq, 0, sizeof zmq);                                                      \
            return 0;                                                                         \
        }                                                                                     \
    } while (0)
    BIND(ctx_new, "zmq_ctx_new");
    BIND(ctx_term, "zmq_ctx_term");
    BIND(socket, "zmq_socket");
    BIND(close, "zmq_close");
    BIND(setsockopt, "zmq_setsockopt");
    BIND(connect, "zmq_connect");
    BIND(send, "zmq_send");
    BIND(msg_init, "zmq_msg_init");
    BIND(msg_recv, "zmq_msg_recv");
    BIND(msg_close, "zmq_msg_close");
    BIND(msg_data, "zmq_msg_data");
    BIND(msg_size, "zmq_msg_size");
    BIND(msg_more, "zmq_msg_more");
    BIND(poll, "zmq_poll");
    BIND(errno_, "zmq_errno");
    BIND(strerror, "zmq_strerror");
#undef BIND
    zmq.library = library;
    return 1;
}

/* ---- shared state: the connection and the socket pool -------------------------------------- */

typedef struct {
    void *socket;
    unsigned generation;
} channel;

typedef struct {
    int loaded;
    char path[4200];
    dev_t device;
    ino_t inode;
    off_t size;
    struct timespec modified;
    char endpoint[1024];
    char key[512];
    long pid;
    unsigned generation;
} connection;

static pthread_mutex_t link_lock = PTHREAD_MUTEX_INITIALIZER;
static void *context;
static connection current;
static channel pool[MAX_POOLED_SOCKETS];
static int pooled;
static char session_id[33];
static uint64_t message_counter;

static void close_socket(void *socket) {
    if (!socket) return;
    int linger = 0;
    zmq.setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq.close(socket);
}

static void random_hex(char *out, size_t digits) {
    static const char DIGITS[] = "0123456789abcdef";
    unsigned char bytes[64] = {0};
    size_t wanted = (digits + 1) / 2;
    int handle = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = handle >= 0 ? read(handle, bytes, wanted) : -1;
    if (handle >= 0) close(handle);
    if (got != (ssize_t)wanted) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t mix = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
        for (size_t i = 0; i < wanted; i++) {
            mix = mix * 6364136223846793005ULL + 1442695040888963407ULL;
            bytes[i] = (unsigned char)(mix >> 56);
        }
    }
    for (size_t i = 0; i < digits; i++) out[i] = DIGITS[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[digits] = '\0';
}

static int pid_alive(long pid) {
    if (pid <= 0) return 0;
    if (kill((pid_t)pid, 0) == 0) return 1;
    return errno == EPERM;
}

static int read_connection(connection *into, const char *path, const struct stat *info, char *reason,
                           size_t reason_size) {
    if (info->st_size <= 0 || info->st_size > MAX_CONNECTION_FILE_BYTES) {
        snprintf(reason, reason_size, "connection file %s has %lld bytes; not a connection file", path,
                 (long long)info->st_size);
        return 0;
    }
    FILE *stream = fopen(path, "rb");
    if (!stream) {
        snprintf(reason, reason_size, "cannot read connection file %s: %s", path, strerror(errno));
        return 0;
    }
    char text[MAX_CONNECTION_FILE_BYTES];
    size_t size = fread(text, 1, sizeof text, stream);
    fclose(stream);
    char error[128];
    json_value *data = json_parse(text, size, error, sizeof error);
    if (!data) {
        snprintf(reason, reason_size, "connection file %s is not JSON (%s)", path, error);
        return 0;
    }
    const char *endpoint = json_get_string(data, "request");
    const char *key = json_get_string(data, "key");
    const char *scheme = json_get_string(data, "signature_scheme");
    double pid = 0;
    int ok = endpoint && key && *key && json_get_number(data, "pid", &pid) && strlen(endpoint) < sizeof into->endpoint &&
             strlen(key) < sizeof into->key && (!scheme || strcmp(scheme, "hmac-sha256") == 0);
    if (ok) {
        snprintf(into->endpoint, sizeof into->endpoint, "%s", endpoint);
        snprintf(into->key, sizeof into->key, "%s", key);
        into->pid = (long)pid;
    } else {
        snprintf(reason, reason_size,
                 "connection file %s lacks request, key or pid, or names a signature scheme other than hmac-sha256",
                 path);
    }
    json_free(data);
    return ok;
}

/* Under link_lock: make `current` describe the engine named in the connection file now. */
static int refresh_connection(char *reason, size_t reason_size) {
    char folder[4096], path[4200];
    if (!bridge_place(folder, sizeof folder, "runtime")) {
        snprintf(reason, reason_size, "the Chronoscope runtime folder path is too long");
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s", folder, CONNECTION_FILE_NAME);
    struct stat info;
    if (stat(path, &info) != 0) {
        current.loaded = 0;
        snprintf(reason, reason_size, "no engine is running: no connection file at %s; start one with "
                 "`chronoscope engine start`", path);
        return 0;
    }
    int same = current.loaded && strcmp(current.path, path) == 0 && current.device == info.st_dev &&
               current.inode == info.st_ino && current.size == info.st_size &&
               current.modified.tv_sec == info.st_mtim.tv_sec && current.modified.tv_nsec == info.st_mtim.tv_nsec;
    if (!same) {
        connection fresh = {0};
        if (!read_connection(&fresh, path, &info, reason, reason_size)) {
            current.loaded = 0;
            return 0;
        }
        fresh.loaded = 1;
        snprintf(fresh.path, sizeof fresh.path, "%s", path);
        fresh.device = info.st_dev;
        fresh.inode = info.st_ino;
        fresh.size = info.st_size;
        fresh.modified = info.st_mtim;
        fresh.generation = current.generation + 1;
        int changed = !current.loaded || strcmp(fresh.endpoint, current.endpoint) != 0 || fresh.pid != current.pid ||
                      strcmp(fresh.key, current.key) != 0;
        if (changed) {
            if (current.endpoint[0])
                bridge_log(BRIDGE_INFO, "engine pid %ld at %s (connection file %s)", fresh.pid, fresh.endpoint, path);
        } else {
            fresh.generation = current.generation;
        }
        current = fresh;
    }
    if (!pid_alive(current.pid)) {
        snprintf(reason, reason_size, "engine pid %ld named in %s is not running; start one with "
                 "`chronoscope engine start`", current.pid, path);
        return 0;
    }
    return 1;
}

/* Under link_lock: a socket connected to the current engine, from the pool or new. */
static void *take_socket(unsigned *generation, char *reason, size_t reason_size) {
    while (pooled > 0) {
        channel item = pool[--pooled];
        if (item.generation == current.generation) {
            *generation = item.generation;
            return item.socket;
        }
        close_socket(item.socket);
    }
    if (!context) {
        context = zmq.ctx_new();
        if (!context) {
            snprintf(reason, reason_size, "zmq_ctx_new failed: %s", zmq.strerror(zmq.errno_()));
            return NULL;
        }
        random_hex(session_id, 32);
    }
    void *socket = zmq.socket(context, ZMQ_DEALER);
    if (!socket) {
        snprintf(reason, reason_size, "zmq_socket failed: %s", zmq.strerror(zmq.errno_()));
        return NULL;
    }
    int linger = 0;
    zmq.setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq.connect(socket, current.endpoint) != 0) {
        snprintf(reason, reason_size, "cannot connect to %s: %s", current.endpoint, zmq.strerror(zmq.errno_()));
        close_socket(socket);
        return NULL;
    }
    *generation = current.generation;
    return socket;
}

static void give_back(void *socket, unsigned generation) {
    pthread_mutex_lock(&link_lock);
    if (generation == current.generation && pooled < MAX_POOLED_SOCKETS) {
        pool[pooled].socket = socket;
        pool[pooled].generation = generation;
        pooled++;
    } else {
        close_socket(socket);
    }
    pthread_mutex_unlock(&link_lock);
}

void link_shutdown(void) {
    pthread_mutex_lock(&link_lock);
    while (pooled > 0) close_socket(pool[--pooled].socket);
    if (context) {
        zmq.ctx_term(context);
        context = NULL;
    }
    memset(&current, 0, sizeof current);
    pthread_mutex_unlock(&link_lock);
}

/* ---- one request --------------------------------------------------------------------------- */

static int64_t now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void iso_date(char *out, size_t size) {
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out, size, "%s.%06ld+00:00", base, now.tv_nsec / 1000L);
}

typedef struct {
    zmq_msg_t parts[MAX_REPLY_PARTS];
    int count;
} reply_parts;

static void release_parts(reply_parts *reply) {
    for (int i = 0; i < reply->count; i++) zmq.msg_close(&reply->parts[i]);
    reply->count = 0;
}

/* Receives one whole multipart message; 0 (and a reason) when it has too many parts. */
static int receive_parts(void *socket, reply_parts *reply, char *reason, size_t reason_size) {
    reply->count = 0;
    int more = 1, overflow = 0;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *slot = reply->count < MAX_REPLY_PARTS ? &reply->parts[reply->count] : &scratch;
        zmq.msg_init(slot);
        if (zmq.msg_recv(slot, socket, 0) < 0) {
            snprintf(reason, reason_size, "receive failed: %s", zmq.strerror(zmq.errno_()));
            zmq.msg_close(slot);
            return 0;
        }
        more = zmq.msg_more(slot);
        if (slot == &scratch) {
            overflow = 1;
            zmq.msg_close(slot);
        } else {
            reply->count++;
        }
    }
    if (overflow) {
        snprintf(reason, reason_size, "the engine's answer had more than %d frames", MAX_REPLY_PARTS);
        return 0;
    }
    return 1;
}

static int part_equals(reply_parts *reply, int index, const char *text) {
    size_t size = strlen(text);
    return zmq.msg_size(&reply->parts[index]) == size && memcmp(zmq.msg_data(&reply->parts[index]), text, size) == 0;
}

static int constant_time_equal(const void *a, const void *b, size_t size) {
    const unsigned char *x = a, *y = b;
    unsigned char difference = 0;
    for (size_t i = 0; i < size; i++) difference |= x[i] ^ y[i];
    return difference == 0;
}

/* Checks a descriptor {buffer, shape, dtype} against the expected shape and dtype; returns the
 * part index holding it, or -1. */
static int descriptor_part(const json_value *descriptor, const char *dtype, const int *shape, int dimensions,
                           int first_buffer, reply_parts *reply, size_t expected_bytes) {
    double index;
    const char *name = json_get_string(descriptor, "dtype");
    const json_value *dims = json_get(descriptor, "shape");
    if (!name || strcmp(name, dtype) != 0 || !json_get_number(descriptor, "buffer", &index)) return -1;
    if (!dims || dims->kind != JSON_ARRAY || (int)dims->count != dimensions) return -1;
    for (int i = 0; i < dimensions; i++)
        if (dims->items[i].kind != JSON_NUMBER || (int)dims->items[i].number != shape[i]) return -1;
    int part = first_buffer + (int)index;
    if (index < 0 || part >= reply->count || zmq.msg_size(&reply->parts[part]) != expected_bytes) return -1;
    return part;
}

/* Reads a checked reply; 1 when it carried the frame, 0 with a reason. */
static int read_reply(reply_parts *reply, const char *key, const char *msg_id, const link_request *request,
                      int *ours, char *reason, size_t reason_size) {
    *ours = 0;
    int delimiter = -1;
    for (int i = 0; i < reply->count && delimiter < 0; i++)
        if (part_equals(reply, i, DELIMITER)) delimiter = i;
    if (delimiter < 0 || reply->count < delimiter + 4) {
        snprintf(reason, reason_size, "malformed answer from the engine (%d frames)", reply->count);
        return 0;
    }
    int signature = delimiter + 1, header_index = delimiter + 2, content_index = delimiter + 3;
    hmac_sha256_ctx mac;
    hmac_sha256_init(&mac, key, strlen(key));
    for (int i = header_index; i < reply->count; i++)
        hmac_sha256_update(&mac, zmq.msg_data(&reply->parts[i]), zmq.msg_size(&reply->parts[i]));
    char expected[SIGNATURE_HEX_BYTES + 1];
    hmac_sha256_hex(&mac, expected);
    if (zmq.msg_size(&reply->parts[signature]) != SIGNATURE_HEX_BYTES ||
        !constant_time_equal(zmq.msg_data(&reply->parts[signature]), expected, SIGNATURE_HEX_BYTES)) {
        snprintf(reason, reason_size, "an answer with an invalid signature was ignored");
        return 0;
    }
    char error[128];
    json_value *header = json_parse(zmq.msg_data(&reply->parts[header_index]),
                                    zmq.msg_size(&reply->parts[header_index]), error, sizeof error);
    const char *parent = json_get_string(header, "parent_id");
    const char *msg_type = json_get_string(header, "msg_type");
    if (!header || !msg_type || !parent || strcmp(parent, msg_id) != 0) {
        int refused_unaddressed = msg_type && strcmp(msg_type, "refused") == 0 && !parent;
        json_free(header);
        if (!refused_unaddressed) {
            snprintf(reason, reason_size, "a late or unrelated answer was dropped");
            return 0;
        }
        header = NULL;
        msg_type = "refused";
    }
    *ours = 1;
    int refused = strcmp(msg_type, "refused") == 0;
    int is_reply = strcmp(msg_type, "synthesize_reply") == 0;
    json_free(header);
    json_value *content = json_parse(zmq.msg_data(&reply->parts[content_index]),
                                     zmq.msg_size(&reply->parts[content_index]), error, sizeof error);
    if (!content) {
        snprintf(reason, reason_size, "the engine's answer is not JSON (%s)", error);
        return 0;
    }
    const char *status = json_get_string(content, "status");
    if (refused || !is_reply || (status && strcmp(status, "error") == 0)) {
        const char *ename = json_get_string(content, "ename");
        const char *evalue = json_get_string(content, "evalue");
        snprintf(reason, reason_size, "the engine %s: %s: %s", refused ? "refused the request" : "answered an error",
                 ename ? ename : (refused ? json_get_string(content, "reason") : "?"), evalue ? evalue : "?");
        json_free(content);
        return 0;
    }
    const json_value *frames = json_get(content, "frames");
    const json_value *first = frames && frames->kind == JSON_ARRAY && frames->count == 1 ? &frames->items[0] : NULL;
    const char *dtype = request->bytes_per_channel == 1 ? "uint8" : "uint16";
    int frame_shape[3] = {request->height, request->width, 4};
    size_t pixels = (size_t)request->height * (size_t)request->width;
    int frame_part = first ? descriptor_part(json_get(first, "frame"), dtype, frame_shape, 3, content_index + 1, reply,
                                             pixels * 4 * (size_t)request->bytes_per_channel)
                           : -1;
    int risk_part = first ? descriptor_part(json_get(first, "risk"), "float32", frame_shape, 2, content_index + 1,
                                            reply, pixels * sizeof(float))
                          : -1;
    json_free(content);
    if (frame_part < 0 || risk_part < 0) {
        snprintf(reason, reason_size, "the engine's answer does not hold one %dx%d RGBA %s frame and its risk map",
                 request->width, request->height, dtype);
        return 0;
    }
    memcpy(request->out_frame, zmq.msg_data(&reply->parts[frame_part]), zmq.msg_size(&reply->parts[frame_part]));
    if (request->out_risk)
        memcpy(request->out_risk, zmq.msg_data(&reply->parts[risk_part]), zmq.msg_size(&reply->parts[risk_part]));
    return 1;
}

int link_synthesize(const link_request *request, char *reason, size_t reason_size) {
    reason[0] = '\0';
    int64_t deadline_ns = now_ns() + (int64_t)(request->timeout_s * 1e9);
    unsigned generation = 0;
    char key[512];
    pthread_mutex_lock(&link_lock);
    int ready = load_zmq(reason, reason_size) && refresh_connection(reason, reason_size);
    void *socket = ready ? take_socket(&generation, reason, reason_size) : NULL;
    uint64_t counter = ++message_counter;
    snprintf(key, sizeof key, "%s", current.key);
    char session[33];
    memcpy(session, session_id, sizeof session);
    pthread_mutex_unlock(&link_lock);
    if (!socket) return 0;

    char msg_id[64], date[64], header[512], content[1024];
    snprintf(msg_id, sizeof msg_id, "%.16s%016llx", session, (unsigned long long)counter);
    iso_date(date, sizeof date);
    snprintf(header, sizeof header,
             "{\"msg_id\":\"%s\",\"msg_type\":\"synthesize\",\"version\":\"%s\",\"date\":\"%s\",\"session\":\"%s\","
             "\"parent_id\":null}",
             msg_id, LINK_PROTOCOL_VERSION, date, session);
    const char *dtype = request->bytes_per_channel == 1 ? "uint8" : "uint16";
    snprintf(content, sizeof content,
             "{\"backend\":\"%s\",\"times\":[%.17g],\"frame0\":{\"buffer\":0,\"shape\":[%d,%d,4],\"dtype\":\"%s\"},"
             "\"frame1\":{\"buffer\":1,\"shape\":[%d,%d,4],\"dtype\":\"%s\"},\"options\":{}}",
             request->backend, request->t, request->height, request->width, dtype, request->height, request->width,
             dtype);
    size_t frame_bytes = (size_t)request->height * (size_t)request->width * 4 * (size_t)request->bytes_per_channel;
    hmac_sha256_ctx mac;
    hmac_sha256_init(&mac, key, strlen(key));
    hmac_sha256_update(&mac, header, strlen(header));
    hmac_sha256_update(&mac, content, strlen(content));
    hmac_sha256_update(&mac, request->frame0, frame_bytes);
    hmac_sha256_update(&mac, request->frame1, frame_bytes);
    char signature[SIGNATURE_HEX_BYTES + 1];
    hmac_sha256_hex(&mac, signature);

    int send_timeout_ms = (int)(request->timeout_s * 1000.0);
    zmq.setsockopt(socket, ZMQ_SNDTIMEO, &send_timeout_ms, sizeof send_timeout_ms);
    int sent = zmq.send(socket, DELIMITER, strlen(DELIMITER), ZMQ_SNDMORE) >= 0 &&
               zmq.send(socket, signature, SIGNATURE_HEX_BYTES, ZMQ_SNDMORE) >= 0 &&
               zmq.send(socket, header, strlen(header), ZMQ_SNDMORE) >= 0 &&
               zmq.send(socket, content, strlen(content), ZMQ_SNDMORE) >= 0 &&
               zmq.send(socket, request->frame0, frame_bytes, ZMQ_SNDMORE) >= 0 &&
               zmq.send(socket, request->frame1, frame_bytes, 0) >= 0;
    if (!sent) {
        snprintf(reason, reason_size, "could not send to the engine within %.3g s: %s", request->timeout_s,
                 zmq.strerror(zmq.errno_()));
        close_socket(socket);
        return 0;
    }
    for (;;) {
        int64_t remaining_ms = (deadline_ns - now_ns()) / 1000000LL;
        zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
        if (remaining_ms <= 0 || zmq.poll(&item, 1, (long)remaining_ms) <= 0 || !(item.revents & ZMQ_POLLIN)) {
            snprintf(reason, reason_size, "the engine did not answer within %.3g s", request->timeout_s);
            close_socket(socket);
            return 0;
        }
        reply_parts reply;
        char detail[512] = "";
        if (!receive_parts(socket, &reply, detail, sizeof detail)) {
            release_parts(&reply);
            bridge_log(BRIDGE_WARNING, "ignored an answer from the engine: %s", detail);
            continue;
        }
        int ours = 0;
        int ok = read_reply(&reply, key, msg_id, request, &ours, reason, reason_size);
        release_parts(&reply);
        if (ours) {
            give_back(socket, generation);
            return ok;
        }
        reason[0] = '\0';
    }
}
