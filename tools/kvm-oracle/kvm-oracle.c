/*
 * kvm-oracle: answers kvmsim replay protocol v1 (shared/specs/replay-protocol.md) with the real
 * /dev/kvm, one JSON line out per op line in. See README.md.
 *
 * Usage: kvm-oracle [--timing] [--keep-guest] < ops.jsonl
 * Exit status 77 (with one line on stderr) where /dev/kvm, a VM, a vCPU or guest execution is
 * not available here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <unistd.h>

#include "hostmem.h"
#include "json.h"
#include "oracle.h"
#include "stack.h"

#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
#define KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 168
#endif

static oracle_t O;
static bool opt_timing;
static bool opt_stats;
static bool vm_announced; /* the protocol's VM exists: create_vm or another well-formed op ran */
static uint64_t vm_create_ns;

_Noreturn void oracle_unavailable(const char *fmt, ...)
{
	fflush(stdout);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(ORACLE_UNAVAILABLE);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                       */

typedef struct {
	long ret;
	const char *exit;   /* "none" / "mmio" / NULL */
	bool has_value;
	uint64_t value;
	bool has_mmio;
	uint64_t phys_addr;
	uint32_t len;
	bool is_write;
	bool has_data;
	uint64_t data;
	char *bitmap;       /* malloc'd hex, or NULL */
	bool has_ns;
	uint64_t ns;
	bool has_touch;     /* x_guest_touch counters */
	uint64_t exits, mmio;
	bool has_stats;     /* --stats: vCPU statistics deltas of a guest op */
	uint64_t stats[GUEST_NSTATS];
	char error[600];
} out_t;

static const char *errno_name(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case ENOTTY: return "ENOTTY";
	case EOVERFLOW: return "EOVERFLOW";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EHWPOISON: return "EHWPOISON";
	default: {
		const char *n = strerrorname_np(e);
		return n ? n : "EUNKNOWN";
	}
	}
}

static void put_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void emit(out_t *o)
{
	FILE *f = stdout;
	fprintf(f, "{\"ret\":%ld", o->ret);
	if (o->ret < 0)
		fprintf(f, ",\"errno\":\"%s\"", errno_name((int)-o->ret));
	if (o->exit)
		fprintf(f, ",\"exit\":\"%s\"", o->exit);
	if (o->has_value)
		fprintf(f, ",\"value\":\"0x%llx\"", (unsigned long long)o->value);
	if (o->has_mmio)
		fprintf(f, ",\"phys_addr\":\"0x%llx\",\"len\":%u,\"is_write\":%s", (unsigned long long)o->phys_addr, o->len,
			o->is_write ? "true" : "false");
	if (o->has_data)
		fprintf(f, ",\"data\":\"0x%llx\"", (unsigned long long)o->data);
	if (o->bitmap)
		fprintf(f, ",\"bitmap\":\"%s\"", o->bitmap);
	if (o->has_ns || opt_timing)
		fprintf(f, ",\"ns\":%llu", (unsigned long long)o->ns);
	if (o->has_touch)
		fprintf(f, ",\"exits\":%llu,\"mmio\":%llu", (unsigned long long)o->exits, (unsigned long long)o->mmio);
	if (o->has_stats) {
		fputs(",\"stats\":{", f);
		for (int i = 0; i < GUEST_NSTATS; i++)
			fprintf(f, "%s\"%s\":%llu", i ? "," : "", guest_stat_names[i], (unsigned long long)o->stats[i]);
		fputc('}', f);
	}
	if (o->ret < 0 && o->error[0]) {
		fputs(",\"error\":", f);
		put_json_string(f, o->error);
	}
	fputs("}\n", f);
	fflush(f);
	free(o->bitmap);
}

static void set_err(out_t *o, int neg_errno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(out_t *o, int neg_errno, const char *fmt, ...)
{
	o->ret = neg_errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->error, sizeof o->error, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------------------------------ */
/* Field access                                                                                 */

typedef struct {
	const jobj *obj;
	long line;
	out_t *out;
	bool bad; /* a field error was reported */
} ctx_t;

static void field_error(ctx_t *c, const char *field, const char *rule)
{
	if (c->bad)
		return;
	c->bad = true;
	set_err(c->out, -EINVAL, "line %ld: field '%s': %s", c->line, field, rule);
}

/* Required (dflt == NULL) or optional integer field with maximum max. */
static uint64_t get_int(ctx_t *c, const char *field, uint64_t max, const uint64_t *dflt)
{
	if (c->bad)
		return 0;
	const jv *v = jobj_get(c->obj, field);
	if (!v) {
		if (dflt)
			return *dflt;
		field_error(c, field, "is required");
		return 0;
	}
	uint64_t u;
	char why[200];
	if (jv_to_u64(v, max, &u, why, sizeof why)) {
		field_error(c, field, why);
		return 0;
	}
	return u;
}

static int get_size(ctx_t *c, const char *field)
{
	if (c->bad)
		return 0;
	const jv *v = jobj_get(c->obj, field);
	if (!v) {
		field_error(c, field, "is required");
		return 0;
	}
	uint64_t u;
	char why[200];
	if (jv_to_u64(v, UINT64_MAX, &u, why, sizeof why)) {
		field_error(c, field, why);
		return 0;
	}
	if (u != 1 && u != 2 && u != 4 && u != 8) {
		snprintf(why, sizeof why, "must be 1, 2, 4 or 8 (got %llu)", (unsigned long long)u);
		field_error(c, field, why);
		return 0;
	}
	return (int)u;
}

/* A string field that must be one of `choices` (NULL-terminated); index, or -1. */
static int get_choice(ctx_t *c, const char *field, const char *const *choices, int dflt)
{
	if (c->bad)
		return -1;
	const jv *v = jobj_get(c->obj, field);
	if (!v) {
		if (dflt >= 0)
			return dflt;
		field_error(c, field, "is required");
		return -1;
	}
	if (v->kind == JV_STR)
		for (int i = 0; choices[i]; i++)
			if (strlen(choices[i]) == v->slen && memcmp(choices[i], v->str, v->slen) == 0)
				return i;
	char rule[600], d[80];
	size_t n = (size_t)snprintf(rule, sizeof rule, choices[1] ? "must be one of " : "must be the string ");
	for (int i = 0; choices[i] && n < sizeof rule - 100; i++)
		n += (size_t)snprintf(rule + n, sizeof rule - n, "%s\"%s\"", i ? ", " : "", choices[i]);
	jv_describe(v, d, sizeof d);
	snprintf(rule + n, sizeof rule - n, " (got %s)", d);
	field_error(c, field, rule);
	return -1;
}

static bool get_bool(ctx_t *c, const char *field, bool dflt)
{
	if (c->bad)
		return dflt;
	const jv *v = jobj_get(c->obj, field);
	if (!v)
		return dflt;
	if (v->kind != JV_BOOL) {
		char d[80], rule[160];
		jv_describe(v, d, sizeof d);
		snprintf(rule, sizeof rule, "must be true or false (got %s)", d);
		field_error(c, field, rule);
		return dflt;
	}
	return v->b;
}

static int hexdig(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Optional bitmap hex string; *present false when absent. Returns malloc'd bytes. */
static uint8_t *get_bitmap(ctx_t *c, const char *field, size_t *nbytes, bool *present)
{
	*present = false;
	*nbytes = 0;
	if (c->bad)
		return NULL;
	const jv *v = jobj_get(c->obj, field);
	if (!v)
		return NULL;
	bool ok = v->kind == JV_STR && v->slen % 2 == 0;
	for (size_t i = 0; ok && i < v->slen; i++)
		if (hexdig(v->str[i]) < 0)
			ok = false;
	if (!ok) {
		char d[80], rule[200];
		jv_describe(v, d, sizeof d);
		snprintf(rule, sizeof rule, "must be a hex string with two hex digits per byte, byte 0 first (got %s)", d);
		field_error(c, field, rule);
		return NULL;
	}
	uint8_t *b = malloc(v->slen / 2 + 1);
	for (size_t i = 0; i < v->slen / 2; i++)
		b[i] = (uint8_t)(hexdig(v->str[2 * i]) << 4 | hexdig(v->str[2 * i + 1]));
	*nbytes = v->slen / 2;
	*present = true;
	return b;
}

/* ------------------------------------------------------------------------------------------ */
/* User buffers that end exactly at an inaccessible page, so that the kernel reading or writing  */
/* beyond what the protocol line supplies faults (EFAULT), as the model says.                     */

typedef struct {
	uint8_t *map;
	size_t maplen;
	uint8_t *ptr; /* first byte of the buffer; the guard page starts at ptr + n */
} guarded;

static int guarded_alloc(guarded *g, size_t n)
{
	size_t body = (n + 4095) & ~(size_t)4095;
	g->maplen = body + 4096;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED)
		return -errno;
	if (mprotect(g->map + body, 4096, PROT_NONE)) {
		int e = errno;
		munmap(g->map, g->maplen);
		return -e;
	}
	g->ptr = g->map + body - n;
	return 0;
}

static void guarded_free(guarded *g)
{
	munmap(g->map, g->maplen);
}

/* ------------------------------------------------------------------------------------------ */
/* Ops                                                                                          */

static const char *const CAP_NAMES[] = {
	"KVM_CAP_NR_MEMSLOTS", "KVM_CAP_MULTI_ADDRESS_SPACE", "KVM_CAP_READONLY_MEM",
	"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", "KVM_CAP_USER_MEMORY2", "KVM_CAP_SYNC_MMU", NULL,
};
static const long CAP_NUMBERS[] = {
	KVM_CAP_NR_MEMSLOTS, KVM_CAP_MULTI_ADDRESS_SPACE, KVM_CAP_READONLY_MEM,
	KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_CAP_USER_MEMORY2, KVM_CAP_SYNC_MMU,
};
static const char *const OPS[] = {
	"create_vm", "check_extension", "enable_cap", "mmap", "munmap", "madvise", "host_write", "host_read",
	"set_user_memory_region", "vcpu_read", "vcpu_write", "get_dirty_log", "clear_dirty_log", "x_guest_touch", NULL,
};
enum {
	OP_CREATE_VM, OP_CHECK_EXTENSION, OP_ENABLE_CAP, OP_MMAP, OP_MUNMAP, OP_MADVISE, OP_HOST_WRITE, OP_HOST_READ,
	OP_SET_USER_MEMORY_REGION, OP_VCPU_READ, OP_VCPU_WRITE, OP_GET_DIRTY_LOG, OP_CLEAR_DIRTY_LOG, OP_X_GUEST_TOUCH,
};

static const uint64_t ZERO = 0;

static uint64_t timed_ioctl(int fd, unsigned long req, void *arg, int *ret)
{
	uint64_t t0 = now_ns();
	int r = ioctl(fd, req, arg);
	uint64_t dt = now_ns() - t0;
	*ret = r < 0 ? -errno : r;
	return dt;
}

static bool value_fits(uint64_t value, int size)
{
	return size == 8 || value >> (8 * size) == 0;
}

static void do_line(const char *text, size_t len, long lineno)
{
	out_t out;
	memset(&out, 0, sizeof out);
	jobj obj;
	char err[300];
	if (json_parse_object(text, len, &obj, err, sizeof err)) {
		if (strncmp(err, "must be", 7) == 0)
			set_err(&out, -EINVAL, "line %ld: %s", lineno, err);
		else
			set_err(&out, -EINVAL, "line %ld: not valid JSON (%s)", lineno, err);
		emit(&out);
		return;
	}
	ctx_t c = { .obj = &obj, .line = lineno, .out = &out };
	const jv *opv = jobj_get(&obj, "op");
	int op = -1;
	if (!opv) {
		field_error(&c, "op", "is required");
	} else {
		op = get_choice(&c, "op", OPS, -1);
	}
	if (c.bad) {
		emit(&out);
		jobj_free(&obj);
		return;
	}

	/* Parse every field first: a malformed line creates nothing and does nothing. */
	uint64_t a = 0, b = 0, d = 0, e = 0, value = 0;
	uint32_t slot = 0, flags = 0, npages = 0;
	int size = 0, cap = -1;
	bool wr = true, bm_present = false;
	uint64_t args[4] = { 0, 0, 0, 0 };
	uint8_t *bm = NULL;
	size_t bm_len = 0;
	static const char *const ARCHES[] = { "x86", NULL };
	static const char *const ENABLE_CAPS[] = { "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", NULL };
	static const char *const ADVICE[] = { "DONTNEED", NULL };
	switch (op) {
	case OP_CREATE_VM:
		get_choice(&c, "arch", ARCHES, 0);
		break;
	case OP_CHECK_EXTENSION:
		cap = get_choice(&c, "cap", CAP_NAMES, -1);
		break;
	case OP_ENABLE_CAP: {
		get_choice(&c, "cap", ENABLE_CAPS, -1);
		flags = (uint32_t)get_int(&c, "flags", UINT32_MAX, &ZERO);
		const jv *av = jobj_get(&obj, "args");
		if (!c.bad && av) {
			if (av->kind != JV_ARR) {
				char dd[80], rule[200];
				jv_describe(av, dd, sizeof dd);
				snprintf(rule, sizeof rule, "must be an array of at most 4 u64 values (got %s)", dd);
				field_error(&c, "args", rule);
			} else {
				for (size_t i = 0; i < av->nelems && !c.bad; i++) {
					char why[200], name[32];
					uint64_t u;
					if (jv_to_u64(&av->elems[i], UINT64_MAX, &u, why, sizeof why)) {
						snprintf(name, sizeof name, "args[%zu]", i);
						field_error(&c, name, why);
					} else if (i < 4) {
						args[i] = u;
					}
				}
				if (!c.bad && av->nelems > 4) {
					char rule[120];
					snprintf(rule, sizeof rule, "must be an array of at most 4 u64 values (got %zu elements)", av->nelems);
					field_error(&c, "args", rule);
				}
			}
		}
		break;
	}
	case OP_MMAP:
	case OP_MUNMAP:
		a = get_int(&c, "addr", UINT64_MAX, NULL);
		b = get_int(&c, "length", UINT64_MAX, NULL);
		break;
	case OP_MADVISE:
		a = get_int(&c, "addr", UINT64_MAX, NULL);
		b = get_int(&c, "length", UINT64_MAX, NULL);
		get_choice(&c, "advice", ADVICE, -1);
		break;
	case OP_HOST_WRITE:
		a = get_int(&c, "addr", UINT64_MAX, NULL);
		size = get_size(&c, "size");
		value = get_int(&c, "value", UINT64_MAX, NULL);
		break;
	case OP_HOST_READ:
		a = get_int(&c, "addr", UINT64_MAX, NULL);
		size = get_size(&c, "size");
		break;
	case OP_SET_USER_MEMORY_REGION:
		slot = (uint32_t)get_int(&c, "slot", UINT32_MAX, NULL);
		flags = (uint32_t)get_int(&c, "flags", UINT32_MAX, &ZERO);
		a = get_int(&c, "guest_phys_addr", UINT64_MAX, NULL);
		b = get_int(&c, "memory_size", UINT64_MAX, NULL);
		d = get_int(&c, "userspace_addr", UINT64_MAX, NULL);
		break;
	case OP_VCPU_READ:
		a = get_int(&c, "gpa", UINT64_MAX, NULL);
		size = get_size(&c, "size");
		break;
	case OP_VCPU_WRITE:
		a = get_int(&c, "gpa", UINT64_MAX, NULL);
		size = get_size(&c, "size");
		value = get_int(&c, "value", UINT64_MAX, NULL);
		break;
	case OP_GET_DIRTY_LOG:
		slot = (uint32_t)get_int(&c, "slot", UINT32_MAX, NULL);
		break;
	case OP_CLEAR_DIRTY_LOG:
		slot = (uint32_t)get_int(&c, "slot", UINT32_MAX, NULL);
		e = get_int(&c, "first_page", UINT64_MAX, NULL);
		npages = (uint32_t)get_int(&c, "num_pages", UINT32_MAX, NULL);
		bm = get_bitmap(&c, "bitmap", &bm_len, &bm_present);
		break;
	case OP_X_GUEST_TOUCH:
		a = get_int(&c, "gpa", UINT64_MAX, NULL);
		npages = (uint32_t)get_int(&c, "npages", UINT32_MAX, NULL);
		wr = get_bool(&c, "write", true);
		value = get_int(&c, "value", UINT64_MAX, &ZERO);
		break;
	default:
		break;
	}
	if (c.bad) {
		free(bm);
		emit(&out);
		jobj_free(&obj);
		return;
	}

	/* A well-formed op: the VM exists from now on. */
	if (op == OP_CREATE_VM) {
		if (vm_announced) {
			set_err(&out, -EINVAL, "create_vm: the VM already exists (create_vm must be the first op)");
		} else {
			out.ns = vm_create_ns; /* KVM_CREATE_VM ran at startup, to exit 77 early where it cannot */
		}
		vm_announced = true;
		emit(&out);
		jobj_free(&obj);
		return;
	}
	vm_announced = true;

	char note[400] = "";
	int r;
	switch (op) {
	case OP_CHECK_EXTENSION:
		out.ns = timed_ioctl(O.vm_fd, KVM_CHECK_EXTENSION, (void *)CAP_NUMBERS[cap], &r);
		out.ret = r;
		if (r < 0)
			set_err(&out, r, "KVM_CHECK_EXTENSION: %s", strerror(-r));
		break;
	case OP_ENABLE_CAP: {
		struct kvm_enable_cap ec;
		memset(&ec, 0, sizeof ec);
		ec.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
		ec.flags = flags;
		memcpy(ec.args, args, sizeof args);
		out.ns = timed_ioctl(O.vm_fd, KVM_ENABLE_CAP, &ec, &r);
		out.ret = r < 0 ? r : 0;
		if (r < 0)
			set_err(&out, r, "KVM_ENABLE_CAP: %s", strerror(-r));
		break;
	}
	case OP_MMAP:
		r = hm_mmap(a, b, note, sizeof note, &out.ns);
		if (r < 0)
			set_err(&out, r, "%s", note[0] ? note : strerror(-r));
		break;
	case OP_MUNMAP:
		r = hm_munmap(a, b, note, sizeof note, &out.ns);
		if (r < 0)
			set_err(&out, r, "munmap: %s", strerror(-r));
		break;
	case OP_MADVISE:
		r = hm_madvise_dontneed(a, b, note, sizeof note, &out.ns);
		if (r < 0)
			set_err(&out, r, "madvise: %s", strerror(-r));
		break;
	case OP_HOST_WRITE:
		if (!value_fits(value, size)) {
			set_err(&out, -EINVAL, "host_write: value 0x%llx is wider than %d bytes", (unsigned long long)value, size);
			break;
		}
		r = hm_write(a, size, value, &out.ns);
		if (r < 0)
			set_err(&out, r, "host_write: [0x%llx, +%d) is not mapped by the sequence", (unsigned long long)a, size);
		break;
	case OP_HOST_READ:
		r = hm_read(a, size, &out.value, &out.ns);
		if (r < 0)
			set_err(&out, r, "host_read: [0x%llx, +%d) is not mapped by the sequence", (unsigned long long)a, size);
		else
			out.has_value = true;
		break;
	case OP_SET_USER_MEMORY_REGION: {
		guest_before_slot_change(&O, slot, a, b);
		struct kvm_userspace_memory_region m = {
			.slot = slot, .flags = flags, .guest_phys_addr = a, .memory_size = b, .userspace_addr = d,
		};
		out.ns = timed_ioctl(O.vm_fd, KVM_SET_USER_MEMORY_REGION, &m, &r);
		if (r < 0) {
			set_err(&out, r, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-r));
		} else if ((slot >> 16) == 0 && (slot & 0xffff) < MAX_SLOT_IDS) {
			seq_slot *s = &O.slots[slot & 0xffff];
			s->present = b != 0;
			s->flags = flags;
			s->gpa = a;
			s->size = b;
		}
		break;
	}
	case OP_VCPU_READ:
	case OP_VCPU_WRITE: {
		bool w = op == OP_VCPU_WRITE;
		if (a >= 0x100000000ull || a % (uint64_t)size) {
			set_err(&out, -EINVAL, "%s: gpa 0x%llx must be below 2^32 and a multiple of size %d", OPS[op], (unsigned long long)a, size);
			break;
		}
		if (w && !value_fits(value, size)) {
			set_err(&out, -EINVAL, "vcpu_write: value 0x%llx is wider than %d bytes", (unsigned long long)value, size);
			break;
		}
		guest_result g;
		guest_access(&O, a, size, w, w ? value : 0, &g);
		out.ns = g.ns;
		out.has_stats = opt_stats;
		memcpy(out.stats, g.stats, sizeof out.stats);
		if (g.ret < 0) {
			set_err(&out, g.ret, "%s: %s", OPS[op], g.error[0] ? g.error : strerror(-g.ret));
			break;
		}
		if (g.mmio) {
			out.exit = "mmio";
			out.has_mmio = true;
			out.phys_addr = g.phys_addr;
			out.len = g.len;
			out.is_write = g.is_write;
			if (g.is_write) {
				out.has_data = true;
				out.data = g.data;
			}
		} else {
			out.exit = "none";
			if (!w) {
				out.has_value = true;
				out.value = g.value;
			}
		}
		break;
	}
	case OP_GET_DIRTY_LOG: {
		size_t nbytes = 0;
		if ((slot >> 16) == 0 && (slot & 0xffff) < MAX_SLOT_IDS && O.slots[slot & 0xffff].present)
			nbytes = (size_t)(((O.slots[slot & 0xffff].size >> 12) + 63) / 64 * 8);
		guarded g;
		r = guarded_alloc(&g, nbytes);
		if (r < 0) {
			set_err(&out, r, "get_dirty_log: cannot allocate the bitmap buffer: %s", strerror(-r));
			break;
		}
		struct kvm_dirty_log dl;
		memset(&dl, 0, sizeof dl);
		dl.slot = slot;
		dl.dirty_bitmap = g.ptr;
		out.ns = timed_ioctl(O.vm_fd, KVM_GET_DIRTY_LOG, &dl, &r);
		if (r < 0) {
			set_err(&out, r, "KVM_GET_DIRTY_LOG: %s", strerror(-r));
		} else {
			out.bitmap = malloc(2 * nbytes + 1);
			for (size_t i = 0; i < nbytes; i++)
				sprintf(out.bitmap + 2 * i, "%02x", g.ptr[i]);
			out.bitmap[2 * nbytes] = '\0';
		}
		guarded_free(&g);
		break;
	}
	case OP_CLEAR_DIRTY_LOG: {
		guarded g = { 0 };
		struct kvm_clear_dirty_log cl;
		memset(&cl, 0, sizeof cl);
		cl.slot = slot;
		cl.num_pages = npages;
		cl.first_page = e;
		if (bm_present) {
			r = guarded_alloc(&g, bm_len);
			if (r < 0) {
				set_err(&out, r, "clear_dirty_log: cannot allocate the bitmap buffer: %s", strerror(-r));
				break;
			}
			memcpy(g.ptr, bm, bm_len);
			cl.dirty_bitmap = g.ptr;
		} else {
			cl.dirty_bitmap = NULL; /* no bitmap field: a NULL pointer */
		}
		out.ns = timed_ioctl(O.vm_fd, KVM_CLEAR_DIRTY_LOG, &cl, &r);
		if (r < 0)
			set_err(&out, r, "KVM_CLEAR_DIRTY_LOG: %s", strerror(-r));
		else
			out.ret = 0;
		if (bm_present)
			guarded_free(&g);
		break;
	}
	case OP_X_GUEST_TOUCH: {
		out.has_ns = true;
		if (a % 4096 || a >= 0x100000000ull || a + (uint64_t)npages * 4096 > 0x100000000ull) {
			set_err(&out, -EINVAL, "x_guest_touch: gpa 0x%llx must be page aligned and [gpa, gpa + npages * 4096) below 2^32",
				(unsigned long long)a);
			break;
		}
		guest_result g;
		guest_touch(&O, a, npages, wr, value, &g);
		out.ns = g.ns;
		out.has_stats = opt_stats;
		memcpy(out.stats, g.stats, sizeof out.stats);
		if (g.ret < 0) {
			set_err(&out, g.ret, "x_guest_touch: %s", g.error[0] ? g.error : strerror(-g.ret));
			break;
		}
		out.has_touch = true;
		out.exits = g.runs;
		out.mmio = g.mmio_exits;
		break;
	}
	default:
		break;
	}
	free(bm);
	emit(&out);
	jobj_free(&obj);
}

/* ------------------------------------------------------------------------------------------ */
/* Main                                                                                         */

/* JavaScript's String.prototype.trimStart() whitespace, for "blank" and "#" lines. */
static size_t js_space_len(const unsigned char *p, size_t n)
{
	if (n >= 1 && (p[0] == ' ' || (p[0] >= 0x09 && p[0] <= 0x0d)))
		return 1;
	if (n >= 2 && p[0] == 0xc2 && p[1] == 0xa0)
		return 2; /* U+00A0 */
	if (n >= 3 && p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
		return 3; /* U+1680 */
	if (n >= 3 && p[0] == 0xe2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
		return 3; /* U+2000..200A, U+2028, U+2029, U+202F */
	if (n >= 3 && p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
		return 3; /* U+205F */
	if (n >= 3 && p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
		return 3; /* U+3000 */
	if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		return 3; /* U+FEFF */
	return 0;
}

static bool skip_line(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	while (i < n && (k = js_space_len(p + i, n - i)) > 0)
		i += k;
	return i == n || p[i] == '#';
}

static void usage(FILE *f)
{
	fputs("usage: kvm-oracle [--timing] [--keep-guest] [--stats] < ops.jsonl\n"
	      "Answers kvmsim replay protocol v1 with the real /dev/kvm (one JSON line per op).\n"
	      "  --timing      add \"ns\" (nanoseconds inside the kernel call(s) of the op) to every answer\n"
	      "  --keep-guest  keep the guest's temporary memslot between guest ops (benchmarks only:\n"
	      "                breaks the protocol's \"removed before answering\" rule)\n"
	      "  --stats       add \"stats\" (vCPU statistics deltas: exits, page faults, emulated\n"
	      "                instructions...) to guest ops (diagnostics; not protocol output)\n"
	      "Exit status 77: /dev/kvm or guest execution is not usable here (reason on stderr).\n",
	      f);
}

static int oracle_main(void *unused);

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--timing") == 0) {
			opt_timing = true;
		} else if (strcmp(argv[i], "--stats") == 0) {
			opt_stats = true;
		} else if (strcmp(argv[i], "--keep-guest") == 0) {
			O.keep_guest = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kvm-oracle: unknown argument %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	/*
	 * Keep the oracle's own mappings (program, libraries, stack) at fixed, high addresses, so
	 * that a sequence's mmap cannot collide with them by chance: run without address-space
	 * randomization (re-executing once to get it).
	 */
	int pers = personality(0xffffffff);
	if (pers != -1 && !(pers & ADDR_NO_RANDOMIZE) && !getenv("KVM_ORACLE_NO_REEXEC")) {
		if (personality((unsigned long)pers | ADDR_NO_RANDOMIZE) != -1) {
			setenv("KVM_ORACLE_NO_REEXEC", "1", 1);
			char self[4096];
			ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
			if (sl > 0) {
				self[sl] = '\0';
				execv(self, argv);
			}
			/* If that fails, carry on with randomization. */
		}
	}
	unsetenv("KVM_ORACLE_NO_REEXEC");
	return run_on_private_stack(oracle_main, NULL);
}

static int oracle_main(void *unused)
{
	(void)unused;
	O.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (O.kvm_fd < 0)
		oracle_unavailable("kvm-oracle: cannot open /dev/kvm: %s", strerror(errno));
	int api = ioctl(O.kvm_fd, KVM_GET_API_VERSION, 0);
	if (api < 0)
		oracle_unavailable("kvm-oracle: /dev/kvm is not a KVM device (KVM_GET_API_VERSION: %s)", strerror(errno));
	if (api != KVM_API_VERSION)
		oracle_unavailable("kvm-oracle: /dev/kvm has API version %d, expected %d", api, KVM_API_VERSION);
	uint64_t t0 = now_ns();
	O.vm_fd = ioctl(O.kvm_fd, KVM_CREATE_VM, 0);
	vm_create_ns = now_ns() - t0;
	if (O.vm_fd < 0)
		oracle_unavailable("kvm-oracle: KVM_CREATE_VM failed: %s", strerror(errno));
	int nr = ioctl(O.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	O.nr_memslots = nr > 0 ? nr : 32;

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		size_t len = (size_t)n;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (skip_line(line, len))
			continue;
		do_line(line, len, lineno);
	}
	free(line);
	return 0;
}
