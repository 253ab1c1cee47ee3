/*
 * A small JSON reader for replay protocol v1 lines: one object per line, whose members are
 * scalars, arrays of scalars, or anything else (nested values are validated and kept only as
 * their kind). Follows JSON.parse: duplicate keys, last one wins.
 */
#ifndef KVM_ORACLE_JSON_H
#define KVM_ORACLE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { JV_NULL = 1, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_kind;

typedef struct jv {
	jv_kind kind;
	bool b;             /* JV_BOOL */
	double num;         /* JV_NUM: the parsed double, as JSON.parse gives it */
	char *str;          /* JV_STR: decoded (UTF-8), NUL-terminated */
	size_t slen;
	struct jv *elems;   /* JV_ARR: top-level arrays only (elements' own nested content not kept) */
	size_t nelems;
} jv;

typedef struct {
	char *key;
	size_t klen;
	jv val;
} jmember;

typedef struct {
	jmember *m;
	size_t n, cap;
} jobj;

/* Parses `text` (len bytes) as one JSON object. 0 on success; -1 with a message in err. */
int json_parse_object(const char *text, size_t len, jobj *out, char *err, size_t errlen);
/* The member named key (the last one when repeated), or NULL. */
const jv *jobj_get(const jobj *o, const char *key);
void jobj_free(jobj *o);

/*
 * Integer fields: a JSON number that is a safe integer, or a string holding a decimal or
 * 0x-hex number. 0 and *out on success, else -1 with the rule broken in why.
 */
int jv_to_u64(const jv *v, uint64_t max, uint64_t *out, char *why, size_t whylen);
/* A short description of a value for error messages. */
void jv_describe(const jv *v, char *buf, size_t len);

#endif
