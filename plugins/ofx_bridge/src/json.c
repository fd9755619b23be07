/* A small recursive-descent JSON reader: enough for the engine's replies and connection file. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *at;
    const char *end;
    char *error;
    size_t error_size;
    int depth;
} json_reader;

static int fail(json_reader *reader, const char *what) {
    if (reader->error && reader->error_size && !reader->error[0])
        snprintf(reader->error, reader->error_size, "%s at byte %ld", what, (long)(reader->end - reader->at));
    return 0;
}

static void skip_space(json_reader *reader) {
    while (reader->at < reader->end &&
           (*reader->at == ' ' || *reader->at == '\t' || *reader->at == '\n' || *reader->at == '\r'))
        reader->at++;
}

static void free_contents(json_value *value) {
    if (!value) return;
    free(value->string);
    for (size_t i = 0; i < value->count; i++) {
        free_contents(&value->items[i]);
        if (value->keys) free(value->keys[i]);
    }
    free(value->items);
    free(value->keys);
    memset(value, 0, sizeof *value);
}

static void append_utf8(char *out, size_t *used, unsigned long code) {
    if (code < 0x80) {
        out[(*used)++] = (char)code;
    } else if (code < 0x800) {
        out[(*used)++] = (char)(0xc0 | (code >> 6));
        out[(*used)++] = (char)(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
        out[(*used)++] = (char)(0xe0 | (code >> 12));
        out[(*used)++] = (char)(0x80 | ((code >> 6) & 0x3f));
        out[(*used)++] = (char)(0x80 | (code & 0x3f));
    } else {
        out[(*used)++] = (char)(0xf0 | (code >> 18));
        out[(*used)++] = (char)(0x80 | ((code >> 12) & 0x3f));
        out[(*used)++] = (char)(0x80 | ((code >> 6) & 0x3f));
        out[(*used)++] = (char)(0x80 | (code & 0x3f));
    }
}

static int read_hex4(json_reader *reader, unsigned long *out) {
    if (reader->end - reader->at < 4) return fail(reader, "short \\u escape");
    unsigned long code = 0;
    for (int i = 0; i < 4; i++) {
        char c = *reader->at++;
        code <<= 4;
        if (c >= '0' && c <= '9') code |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f') code |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') code |= (unsigned long)(c - 'A' + 10);
        else return fail(reader, "bad \\u escape");
    }
    *out = code;
    return 1;
}

/* Reads a string (the opening quote already consumed) into a new NUL-terminated buffer. */
static int read_string(json_reader *reader, char **out) {
    size_t capacity = (size_t)(reader->end - reader->at) + 1, used = 0;
    char *text = malloc(capacity);
    if (!text) return fail(reader, "out of memory");
    while (reader->at < reader->end && *reader->at != '"') {
        unsigned char c = (unsigned char)*reader->at++;
        if (c < 0x20) {
            free(text);
            return fail(reader, "control character in string");
        }
        if (c != '\\') {
            text[used++] = (char)c;
            continue;
        }
        if (reader->at >= reader->end) break;
        char escape = *reader->at++;
        switch (escape) {
        case '"': text[used++] = '"'; break;
        case '\\': text[used++] = '\\'; break;
        case '/': text[used++] = '/'; break;
        case 'b': text[used++] = '\b'; break;
        case 'f': text[used++] = '\f'; break;
        case 'n': text[used++] = '\n'; break;
        case 'r': text[used++] = '\r'; break;
        case 't': text[used++] = '\t'; break;
        case 'u': {
            unsigned long code, low;
            if (!read_hex4(reader, &code)) {
                free(text);
                return 0;
            }
            if (code >= 0xd800 && code < 0xdc00 && reader->end - reader->at >= 6 && reader->at[0] == '\\' &&
                reader->at[1] == 'u') {
                reader->at += 2;
                if (!read_hex4(reader, &low)) {
                    free(text);
                    return 0;
                }
                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            }
            append_utf8(text, &used, code);
            break;
        }
        default:
            free(text);
            return fail(reader, "bad escape in string");
        }
    }
    if (reader->at >= reader->end) {
        free(text);
        return fail(reader, "unterminated string");
    }
    reader->at++;
    text[used] = '\0';
    *out = text;
    return 1;
}

static int read_value(json_reader *reader, json_value *out);

static int grow(json_value *value, size_t *capacity, int with_keys) {
    if (value->count < *capacity) return 1;
    size_t next = *capacity ? *capacity * 2 : 4;
    json_value *items = realloc(value->items, next * sizeof *items);
    if (!items) return 0;
    value->items = items;
    if (with_keys) {
        char **keys = realloc(value->keys, next * sizeof *keys);
        if (!keys) return 0;
        value->keys = keys;
    }
    *capacity = next;
    return 1;
}

static int read_container(json_reader *reader, json_value *out, int is_object) {
    char close = is_object ? '}' : ']';
    size_t capacity = 0;
    out->kind = is_object ? JSON_OBJECT : JSON_ARRAY;
    if (++reader->depth > JSON_MAX_DEPTH) return fail(reader, "nested too deeply");
    skip_space(reader);
    if (reader->at < reader->end && *reader->at == close) {
        reader->at++;
        reader->depth--;
        return 1;
    }
    for (;;) {
        if (!grow(out, &capacity, is_object)) return fail(reader, "out of memory");
        json_value *item = &out->items[out->count];
        memset(item, 0, sizeof *item);
        if (is_object) {
            skip_space(reader);
            if (reader->at >= reader->end || *reader->at != '"') return fail(reader, "object key expected");
            reader->at++;
            if (!read_string(reader, &out->keys[out->count])) return 0;
            out->count++;
            skip_space(reader);
            if (reader->at >= reader->end || *reader->at != ':') return fail(reader, "':' expected");
            reader->at++;
        } else {
            out->count++;
        }
        if (!read_value(reader, item)) return 0;
        skip_space(reader);
        if (reader->at < reader->end && *reader->at == ',') {
            reader->at++;
            continue;
        }
        if (reader->at < reader->end && *reader->at == close) {
            reader->at++;
            reader->depth--;
            return 1;
        }
        return fail(reader, "',' or end of container expected");
    }
}

static int read_literal(json_reader *reader, const char *word) {
    size_t size = strlen(word);
    if ((size_t)(reader->end - reader->at) < size || memcmp(reader->at, word, size) != 0)
        return fail(reader, "unknown literal");
    reader->at += size;
    return 1;
}

static int read_value(json_reader *reader, json_value *out) {
    skip_space(reader);
    if (reader->at >= reader->end) return fail(reader, "value expected");
    char c = *reader->at;
    if (c == '{' || c == '[') {
        reader->at++;
        return read_container(reader, out, c == '{');
    }
    if (c == '"') {
        reader->at++;
        out->kind = JSON_STRING;
        return read_string(reader, &out->string);
    }
    if (c == 't' || c == 'f') {
        out->kind = JSON_BOOL;
        out->boolean = c == 't';
        return read_literal(reader, c == 't' ? "true" : "false");
    }
    if (c == 'n') {
        out->kind = JSON_NULL;
        return read_literal(reader, "null");
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buffer[64];
        size_t used = 0;
        while (reader->at < reader->end && used < sizeof buffer - 1 && strchr("+-0123456789.eE", *reader->at))
            buffer[used++] = *reader->at++;
        buffer[used] = '\0';
        char *stop;
        out->kind = JSON_NUMBER;
        out->number = strtod(buffer, &stop);
        if (stop != buffer + used) return fail(reader, "bad number");
        return 1;
    }
    return fail(reader, "unexpected character");
}

json_value *json_parse(const char *text, size_t size, char *error, size_t error_size) {
    if (error && error_size) error[0] = '\0';
    json_reader reader = {text, text + size, error, error_size, 0};
    json_value *value = calloc(1, sizeof *value);
    if (!value) return NULL;
    if (!read_value(&reader, value)) {
        json_free(value);
        return NULL;
    }
    skip_space(&reader);
    if (reader.at != reader.end) {
        fail(&reader, "trailing characters");
        json_free(value);
        return NULL;
    }
    return value;
}

void json_free(json_value *value) {
    if (!value) return;
    free_contents(value);
    free(value);
}

const json_value *json_get(const json_value *object, const char *key) {
    if (!object || object->kind != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}

const char *json_get_string(const json_value *object, const char *key) {
    const json_value *member = json_get(object, key);
    return member && member->kind == JSON_STRING ? member->string : NULL;
}

int json_get_number(const json_value *object, const char *key, double *out) {
    const json_value *member = json_get(object, key);
    if (!member || member->kind != JSON_NUMBER) return 0;
    *out = member->number;
    return 1;
}
