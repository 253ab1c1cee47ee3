/* Host mappings of the sequence; see hostmem.h. */
#define _GNU_SOURCE
#include "hostmem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096ull

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sorted, disjoint, non-adjacent [start, end) ranges the sequence has mapped. */
typedef struct {
	uint64_t s, e;
} range;
static range *rs;
static size_t nrs, caprs;

static void ranges_add(uint64_t s, uint64_t e)
{
	/* Merge with every range that overlaps or touches [s, e). */
	size_t i = 0;
	while (i < nrs && rs[i].e < s)
		i++;
	size_t j = i;
	while (j < nrs && rs[j].s <= e) {
		if (rs[j].s < s)
			s = rs[j].s;
		if (rs[j].e > e)
			e = rs[j].e;
		j++;
	}
	if (i == j) {
		if (nrs == caprs) {
			caprs = caprs ? 2 * caprs : 16;
			rs = realloc(rs, caprs * sizeof *rs);
		}
		memmove(&rs[i + 1], &rs[i], (nrs - i) * sizeof *rs);
		nrs++;
	} else {
		memmove(&rs[i + 1], &rs[j], (nrs - j) * sizeof *rs);
		nrs -= j - i - 1;
	}
	rs[i].s = s;
	rs[i].e = e;
}

static void ranges_remove(uint64_t s, uint64_t e)
{
	size_t cap = nrs + 2; /* removing one hole splits at most one range */
	range *out = malloc(cap * sizeof *out);
	size_t n = 0;
	for (size_t i = 0; i < nrs; i++) {
		if (rs[i].e <= s || rs[i].s >= e) {
			out[n++] = rs[i];
			continue;
		}
		if (rs[i].s < s)
			out[n++] = (range){ rs[i].s, s };
		if (rs[i].e > e)
			out[n++] = (range){ e, rs[i].e };
	}
	free(rs);
	rs = out;
	nrs = n;
	caprs = cap;
}

/* Bytes of [s, e) covered by sequence mappings. */
static uint64_t ranges_covered(uint64_t s, uint64_t e)
{
	uint64_t c = 0;
	for (size_t i = 0; i < nrs; i++) {
		uint64_t a = rs[i].s > s ? rs[i].s : s;
		uint64_t b = rs[i].e < e ? rs[i].e : e;
		if (a < b)
			c += b - a;
	}
	return c;
}

/*
 * Does [s, e) hold any byte mapped in this process that the sequence did not map (the oracle's
 * own code, heap, stack, libraries, vCPU page, temporary guest memory...)?
 */
static bool foreign_in_range(uint64_t s, uint64_t e)
{
	if (s >= e)
		return false;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return true; /* cannot tell: be safe */
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long long a, b;
		if (sscanf(line, "%llx-%llx", &a, &b) != 2)
			continue;
		if (b <= s || a >= e)
			continue;
		uint64_t x = a > s ? a : s;
		uint64_t y = b < e ? b : e;
		if (ranges_covered(x, y) != y - x)
			found = true;
		/* A line longer than the buffer: skip the rest of it. */
		while (!strchr(line, '\n') && fgets(line, sizeof line, f))
			;
	}
	fclose(f);
	return found;
}

static bool sequence_overlaps(uint64_t s, uint64_t e)
{
	return ranges_covered(s, e) != 0;
}

int hm_mmap(uint64_t addr, uint64_t length, char *note, size_t notelen, uint64_t *ns)
{
	note[0] = '\0';
	*ns = 0;
	/* Protocol rule (the model's too): an unaligned length is EINVAL, where Linux would round it up. */
	if (length != 0 && (length & (PAGE - 1)) != 0) {
		snprintf(note, notelen, "mmap: length 0x%llx is not a multiple of the page size", (unsigned long long)length);
		return -EINVAL;
	}
	uint64_t t0 = now_ns();
	void *p = mmap((void *)(uintptr_t)addr, (size_t)length, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	*ns = now_ns() - t0;
	if (p == MAP_FAILED) {
		int e = errno;
		if (e == EEXIST) {
			uint64_t end = addr + length;
			if (!sequence_overlaps(addr, end < addr ? UINT64_MAX : end))
				snprintf(note, notelen,
					 "mmap: [0x%llx, +0x%llx) overlaps a mapping of the oracle process itself, not one of the sequence "
					 "(a clean address space would have succeeded)",
					 (unsigned long long)addr, (unsigned long long)length);
		}
		return -e;
	}
	if ((uint64_t)(uintptr_t)p != addr) {
		/* A kernel without MAP_FIXED_NOREPLACE treats it as a hint. */
		munmap(p, (size_t)length);
		snprintf(note, notelen, "mmap: the kernel ignored MAP_FIXED_NOREPLACE");
		return -EEXIST;
	}
	ranges_add(addr, addr + length);
	return 0;
}

/* The pieces of [s, e) the sequence has mapped, for applying an op to them alone. */
static size_t sequence_pieces(uint64_t s, uint64_t e, range **out)
{
	range *v = malloc((nrs + 1) * sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < nrs; i++) {
		uint64_t a = rs[i].s > s ? rs[i].s : s;
		uint64_t b = rs[i].e < e ? rs[i].e : e;
		if (a < b)
			v[n++] = (range){ a, b };
	}
	*out = v;
	return n;
}

int hm_munmap(uint64_t addr, uint64_t length, char *note, size_t notelen, uint64_t *ns)
{
	note[0] = '\0';
	*ns = 0;
	/* The bytes the call could affect: [addr, addr + PAGE_ALIGN(length)) below TASK_SIZE. */
	uint64_t lim = addr >= ORACLE_TASK_SIZE ? addr : ORACLE_TASK_SIZE;
	uint64_t span_end = (length > lim - addr) ? lim : addr + ((length + PAGE - 1) & ~(PAGE - 1));
	if (!foreign_in_range(addr, span_end)) {
		uint64_t t0 = now_ns();
		int r = munmap((void *)(uintptr_t)addr, (size_t)length);
		*ns = now_ns() - t0;
		if (r)
			return -errno;
		ranges_remove(addr, span_end);
		return 0;
	}
	/*
	 * The range covers memory of the oracle itself: check the arguments as do_vmi_munmap() does,
	 * then unmap only what the sequence mapped (unmapping holes is not an error).
	 */
	if ((addr & (PAGE - 1)) || addr > ORACLE_TASK_SIZE || length > ORACLE_TASK_SIZE - addr)
		return -EINVAL;
	uint64_t end = addr + ((length + PAGE - 1) & ~(PAGE - 1));
	if (end == addr)
		return -EINVAL;
	range *pieces;
	size_t n = sequence_pieces(addr, end, &pieces);
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		int r = munmap((void *)(uintptr_t)pieces[i].s, (size_t)(pieces[i].e - pieces[i].s));
		*ns += now_ns() - t0;
		if (r) {
			int e = errno;
			free(pieces);
			return -e;
		}
	}
	free(pieces);
	ranges_remove(addr, end);
	snprintf(note, notelen, "munmap: the range covers mappings of the oracle itself; only the sequence's mappings were unmapped");
	return 0;
}

int hm_madvise_dontneed(uint64_t addr, uint64_t length, char *note, size_t notelen, uint64_t *ns)
{
	note[0] = '\0';
	*ns = 0;
	uint64_t alen = (length + PAGE - 1) & ~(PAGE - 1);
	uint64_t span_end = addr + alen;
	if (span_end < addr || alen < length)
		span_end = UINT64_MAX;
	if (span_end > ORACLE_TASK_SIZE)
		span_end = addr < ORACLE_TASK_SIZE ? ORACLE_TASK_SIZE : addr;
	if (!foreign_in_range(addr, span_end)) {
		uint64_t t0 = now_ns();
		int r = madvise((void *)(uintptr_t)addr, (size_t)length, MADV_DONTNEED);
		*ns = now_ns() - t0;
		return r ? -errno : 0;
	}
	/* As do_madvise(): checks, then each mapped part; ENOMEM if any part was unmapped. */
	if (addr & (PAGE - 1))
		return -EINVAL;
	if (length != 0 && alen == 0)
		return -EINVAL;
	uint64_t end = addr + alen;
	if (end < addr)
		return -EINVAL;
	if (end == addr)
		return 0;
	range *pieces;
	size_t n = sequence_pieces(addr, end, &pieces);
	uint64_t covered = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		int r = madvise((void *)(uintptr_t)pieces[i].s, (size_t)(pieces[i].e - pieces[i].s), MADV_DONTNEED);
		*ns += now_ns() - t0;
		if (r) {
			int e = errno;
			free(pieces);
			return -e;
		}
		covered += pieces[i].e - pieces[i].s;
	}
	free(pieces);
	snprintf(note, notelen, "madvise: the range covers mappings of the oracle itself; only the sequence's mappings were advised");
	return covered == end - addr ? 0 : -ENOMEM;
}

static bool accessible(uint64_t addr, int size)
{
	uint64_t end = addr + (uint64_t)size;
	if (end < addr)
		return false;
	return ranges_covered(addr, end) == (uint64_t)size;
}

int hm_read(uint64_t addr, int size, uint64_t *value, uint64_t *ns)
{
	*ns = 0;
	if (!accessible(addr, size))
		return -EFAULT;
	uint64_t v = 0;
	uint64_t t0 = now_ns();
	memcpy(&v, (const void *)(uintptr_t)addr, (size_t)size); /* little-endian host */
	*ns = now_ns() - t0;
	*value = v;
	return 0;
}

int hm_write(uint64_t addr, int size, uint64_t value, uint64_t *ns)
{
	*ns = 0;
	if (!accessible(addr, size))
		return -EFAULT;
	uint64_t t0 = now_ns();
	memcpy((void *)(uintptr_t)addr, &value, (size_t)size);
	*ns = now_ns() - t0;
	return 0;
}
