/* A small JSON reader for the engine's replies and connection file (RFC 8259, depth-limited). */
#ifndef CHRONOSCOPE_JSON_H
#define CHRONOSCOPE_JSON_H

#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_kind;

typedef struct json_value {
    json_kind kind;
    int boolean;
    double number;
    char *string;              /* JSON_STRING: decoded UTF-8, NUL-terminated */
    size_t count;              /* JSON_ARRAY / JSON_OBJECT: number of items */
    struct json_value *items;  /* the items (object values) */
    char **keys;               /* JSON_OBJECT: the keys, one per item */
} json_value;

/* Parse `size` bytes; NULL when they are not one JSON value (a reason goes to `error`). */
json_value *json_parse(const char *text, size_t size, char *error, size_t error_size);
void json_free(json_value *value);

/* The member `key` of an object, or NULL (also when `object` is not an object). */
const json_value *json_get(const json_value *object, const char *key);
/* The member's string, or NULL when absent or not a string. */
const char *json_get_string(const json_value *object, const char *key);
/* The member's number in *out; 0 when absent or not a number. */
int json_get_number(const json_value *object, const char *key, double *out);

#endif
