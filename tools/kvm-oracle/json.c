/* JSON reader for replay protocol lines; see json.h. Grammar and number handling as JSON.parse. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1000

typedef struct {
	const char *p, *end, *start;
	char *err;
	size_t errlen;
	bool failed;
} parser;

static void fail(parser *ps, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = true;
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s at column %zu", msg, (size_t)(ps->p - ps->start) + 1);
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void put_utf8(char *buf, size_t *n, uint32_t cp)
{
	/* Lone surrogates are kept (as JSON.parse does), encoded like any other code point. */
	if (cp < 0x80) {
		buf[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		buf[(*n)++] = (char)(0xc0 | (cp >> 6));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		buf[(*n)++] = (char)(0xe0 | (cp >> 12));
		buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		buf[(*n)++] = (char)(0xf0 | (cp >> 18));
		buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static int read_hex4(parser *ps, uint32_t *out)
{
	if (ps->end - ps->p < 4) {
		fail(ps, "bad \\u escape");
		return -1;
	}
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);
		if (h < 0) {
			fail(ps, "bad \\u escape");
			return -1;
		}
		v = v << 4 | (uint32_t)h;
	}
	ps->p += 4;
	*out = v;
	return 0;
}

/* Parses a string at ps->p (on the opening quote). If out != NULL, stores a malloc'd copy. */
static int parse_string(parser *ps, char **out, size_t *outlen)
{
	ps->p++; /* opening quote */
	/* Decoded text is never longer than the source text. */
	const char *q = ps->p;
	while (q < ps->end && *q != '"') {
		if (*q == '\\')
			q++;
		q++;
	}
	size_t cap = (size_t)(q - ps->p) + 8;
	char *buf = out ? malloc(cap) : NULL;
	size_t n = 0;
	char tmp[8];
	for (;;) {
		if (ps->p >= ps->end) {
			fail(ps, "unterminated string");
			free(buf);
			return -1;
		}
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20) {
			fail(ps, "control character in string");
			free(buf);
			return -1;
		}
		if (c != '\\') {
			if (buf)
				buf[n] = (char)c;
			n++;
			ps->p++;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end) {
			fail(ps, "unterminated string");
			free(buf);
			return -1;
		}
		char e = *ps->p++;
		char ch;
		switch (e) {
		case '"': ch = '"'; break;
		case '\\': ch = '\\'; break;
		case '/': ch = '/'; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'u': {
			uint32_t cp;
			if (read_hex4(ps, &cp)) {
				free(buf);
				return -1;
			}
			if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
				const char *save = ps->p;
				uint32_t lo;
				ps->p += 2;
				if (read_hex4(ps, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else {
					ps->failed = false;
					ps->p = save;
				}
			}
			size_t k = 0;
			put_utf8(tmp, &k, cp);
			if (buf)
				memcpy(buf + n, tmp, k);
			n += k;
			continue;
		}
		default:
			ps->p--;
			fail(ps, "bad escape \\%c", e);
			free(buf);
			return -1;
		}
		if (buf)
			buf[n] = ch;
		n++;
	}
	if (buf) {
		buf[n] = '\0';
		*out = buf;
		*outlen = n;
	}
	return 0;
}

static int parse_number(parser *ps, double *out)
{
	const char *s = ps->p;
	const char *p = s;
	if (p < ps->end && *p == '-')
		p++;
	if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
		ps->p = p;
		fail(ps, "bad number");
		return -1;
	}
	if (*p == '0')
		p++;
	else
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	if (p < ps->end && *p == '.') {
		p++;
		if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
			ps->p = p;
			fail(ps, "bad number");
			return -1;
		}
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < ps->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < ps->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
			ps->p = p;
			fail(ps, "bad number");
			return -1;
		}
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	}
	size_t n = (size_t)(p - s);
	char small[64];
	char *tmp = n < sizeof small ? small : malloc(n + 1);
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtod(tmp, NULL); /* the nearest double, as JSON.parse */
	if (tmp != small)
		free(tmp);
	ps->p = p;
	return 0;
}

static void jv_free(jv *v);

/* Parses any value. keep: store it in *v (arrays keep their elements one level deep). */
static int parse_value(parser *ps, jv *v, int depth, bool keep)
{
	if (depth > MAX_DEPTH) {
		fail(ps, "nesting too deep");
		return -1;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end of input");
		return -1;
	}
	memset(v, 0, sizeof *v);
	char c = *ps->p;
	if (c == '{') {
		v->kind = JV_OBJ;
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return 0;
		}
		for (;;) {
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a string key");
				return -1;
			}
			if (parse_string(ps, NULL, NULL))
				return -1;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail(ps, "expected ':'");
				return -1;
			}
			ps->p++;
			jv sub;
			if (parse_value(ps, &sub, depth + 1, false))
				return -1;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == '}') {
				ps->p++;
				return 0;
			}
			fail(ps, "expected ',' or '}'");
			return -1;
		}
	}
	if (c == '[') {
		v->kind = JV_ARR;
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return 0;
		}
		size_t cap = 0;
		for (;;) {
			jv sub;
			if (parse_value(ps, &sub, depth + 1, false)) {
				jv_free(v);
				return -1;
			}
			if (keep) {
				if (v->nelems == cap) {
					cap = cap ? 2 * cap : 4;
					v->elems = realloc(v->elems, cap * sizeof *v->elems);
				}
				v->elems[v->nelems++] = sub;
			} else {
				jv_free(&sub);
			}
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == ']') {
				ps->p++;
				return 0;
			}
			jv_free(v);
			fail(ps, "expected ',' or ']'");
			return -1;
		}
	}
	if (c == '"') {
		v->kind = JV_STR;
		/* Scalars are always kept: array elements need them even when the array is nested once. */
		return parse_string(ps, &v->str, &v->slen);
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		v->kind = JV_NUM;
		return parse_number(ps, &v->num);
	}
	static const struct {
		const char *word;
		jv_kind kind;
		bool b;
	} lits[] = { { "true", JV_BOOL, true }, { "false", JV_BOOL, false }, { "null", JV_NULL, false } };
	for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
		size_t n = strlen(lits[i].word);
		if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lits[i].word, n) == 0) {
			ps->p += n;
			v->kind = lits[i].kind;
			v->b = lits[i].b;
			return 0;
		}
	}
	fail(ps, "unexpected character '%c'", c);
	return -1;
}

static void jv_free(jv *v)
{
	free(v->str);
	for (size_t i = 0; i < v->nelems; i++)
		jv_free(&v->elems[i]);
	free(v->elems);
	memset(v, 0, sizeof *v);
}

void jobj_free(jobj *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->m[i].key);
		jv_free(&o->m[i].val);
	}
	free(o->m);
	memset(o, 0, sizeof *o);
}

int json_parse_object(const char *text, size_t len, jobj *out, char *err, size_t errlen)
{
	parser ps = { .p = text, .end = text + len, .start = text, .err = err, .errlen = errlen };
	memset(out, 0, sizeof *out);
	skip_ws(&ps);
	if (ps.p >= ps.end) {
		fail(&ps, "unexpected end of input");
		return -1;
	}
	if (*ps.p != '{') {
		/* Valid JSON that is not an object is a different error than invalid JSON. */
		jv v;
		if (parse_value(&ps, &v, 0, true) == 0) {
			skip_ws(&ps);
			if (ps.p == ps.end) {
				char d[64];
				jv_describe(&v, d, sizeof d);
				snprintf(err, errlen, "must be a JSON object (got %s)", d);
				jv_free(&v);
				return -1;
			}
			jv_free(&v);
			fail(&ps, "unexpected text after the JSON value");
		}
		return -1;
	}
	ps.p++;
	skip_ws(&ps);
	if (ps.p < ps.end && *ps.p == '}') {
		ps.p++;
	} else {
		for (;;) {
			skip_ws(&ps);
			if (ps.p >= ps.end || *ps.p != '"') {
				fail(&ps, "expected a string key");
				goto bad;
			}
			char *key;
			size_t klen;
			if (parse_string(&ps, &key, &klen))
				goto bad;
			skip_ws(&ps);
			if (ps.p >= ps.end || *ps.p != ':') {
				free(key);
				fail(&ps, "expected ':'");
				goto bad;
			}
			ps.p++;
			jv v;
			if (parse_value(&ps, &v, 1, true)) {
				free(key);
				goto bad;
			}
			if (out->n == out->cap) {
				out->cap = out->cap ? 2 * out->cap : 16;
				out->m = realloc(out->m, out->cap * sizeof *out->m);
			}
			out->m[out->n].key = key;
			out->m[out->n].klen = klen;
			out->m[out->n].val = v;
			out->n++;
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == ',') {
				ps.p++;
				continue;
			}
			if (ps.p < ps.end && *ps.p == '}') {
				ps.p++;
				break;
			}
			fail(&ps, "expected ',' or '}'");
			goto bad;
		}
	}
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, "unexpected text after the JSON value");
		goto bad;
	}
	return 0;
bad:
	jobj_free(out);
	return -1;
}

const jv *jobj_get(const jobj *o, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = o->n; i-- > 0;) /* last one wins */
		if (o->m[i].klen == kl && memcmp(o->m[i].key, key, kl) == 0)
			return &o->m[i].val;
	return NULL;
}

void jv_describe(const jv *v, char *buf, size_t len)
{
	switch (v->kind) {
	case JV_NULL: snprintf(buf, len, "null"); break;
	case JV_BOOL: snprintf(buf, len, "%s", v->b ? "true" : "false"); break;
	case JV_NUM: snprintf(buf, len, "%.17g", v->num); break;
	case JV_STR: {
		/* quoted, truncated, with anything outside printable ASCII escaped */
		size_t n = 0;
		if (len < 8) {
			snprintf(buf, len, "\"…\"");
			return;
		}
		buf[n++] = '"';
		for (size_t i = 0; i < v->slen && n + 8 < len; i++) {
			unsigned char c = (unsigned char)v->str[i];
			if (c == '"' || c == '\\') {
				buf[n++] = '\\';
				buf[n++] = (char)c;
			} else if (c >= 0x20 && c < 0x7f) {
				buf[n++] = (char)c;
			} else {
				n += (size_t)snprintf(buf + n, len - n, "\\x%02x", c);
			}
			if (i + 1 < v->slen && n + 8 >= len) {
				n += (size_t)snprintf(buf + n, len - n, "...");
				break;
			}
		}
		buf[n++] = '"';
		buf[n] = '\0';
		break;
	}
	case JV_ARR: snprintf(buf, len, "an array"); break;
	case JV_OBJ: snprintf(buf, len, "an object"); break;
	default: snprintf(buf, len, "?"); break;
	}
}

#define INTEGER_RULE "must be a JSON safe integer or a decimal/0x-hex string"

int jv_to_u64(const jv *v, uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	char d[80];
	const char *range = max == UINT64_MAX ? "must be a u64: 0 … 2^64−1" : max == UINT32_MAX ? "must be a u32: 0 … 2^32−1" : "out of range";
	if (v->kind == JV_NUM) {
		double x = v->num;
		if (!isfinite(x) || floor(x) != x) {
			snprintf(why, whylen, INTEGER_RULE " (got %.17g, not an integer)", x);
			return -1;
		}
		if (fabs(x) > 9007199254740991.0) {
			snprintf(why, whylen, INTEGER_RULE " (got %.17g, not a safe integer: write integers above 2^53−1 as strings)", x);
			return -1;
		}
		if (x < 0) {
			snprintf(why, whylen, "%s (got %.0f)", range, x);
			return -1;
		}
		uint64_t u = (uint64_t)x;
		if (u > max) {
			snprintf(why, whylen, "%s (got %llu)", range, (unsigned long long)u);
			return -1;
		}
		*out = u;
		return 0;
	}
	if (v->kind == JV_STR) {
		const char *s = v->str;
		size_t n = v->slen;
		bool neg = false, hex = false;
		size_t i = 0;
		if (n >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
			hex = true;
			i = 2;
		} else if (n >= 2 && s[0] == '-') {
			neg = true;
			i = 1;
		}
		bool ok = i < n;
		bool overflow = false;
		uint64_t u = 0;
		for (size_t k = i; ok && k < n; k++) {
			int dv = hex ? hexval(s[k]) : (s[k] >= '0' && s[k] <= '9' ? s[k] - '0' : -1);
			if (dv < 0) {
				ok = false;
				break;
			}
			unsigned base = hex ? 16 : 10;
			if (u > (UINT64_MAX - (uint64_t)dv) / base)
				overflow = true;
			else
				u = u * base + (uint64_t)dv;
		}
		if (!ok) {
			jv_describe(v, d, sizeof d);
			snprintf(why, whylen, INTEGER_RULE " (got %s)", d);
			return -1;
		}
		if (overflow || (neg && u != 0) || u > max) {
			snprintf(why, whylen, "%s (got %s)", range, v->slen > 60 ? "a longer number" : v->str);
			return -1;
		}
		*out = u;
		return 0;
	}
	jv_describe(v, d, sizeof d);
	snprintf(why, whylen, INTEGER_RULE " (got %s)", d);
	return -1;
}
