/*
 * Guest accesses for kvm-oracle: a 64-bit guest running at CPL 3 with its own page tables, so
 * that its loads and stores go through KVM's real (shadow) mappings rather than the instruction
 * emulator. See README.md "Guest design".
 *
 * Temporary memslot ("temp slot"): TEMP_SLOT_SIZE bytes of oracle memory at guest-physical T,
 * where T >= 4 GiB is 2 MiB aligned and [T, T + 2 MiB) overlaps no slot of the sequence. Layout:
 *   T+0x0000 PML4
 *   T+0x1000 PDPT for DATA_VA            T+0x2000..0x5fff four PDs: 2 MiB pages, gpa 0 .. 4 GiB
 *   T+0x6000 PDPT for CODE_VA            T+0x7000 PD: one 2 MiB page at T
 *   T+0x8000 code                        T+0x9000 stack page (unused by the code)
 *   T+TEMP_SLOT_SIZE: the end marker. No slot backs it (the 2 MiB region is reserved), so the
 *   guest's store there leaves with KVM_EXIT_MMIO at a known address.
 * Guest virtual addresses: DATA_VA + gpa for the accessed data (gpa < 4 GiB), CODE_VA + offset
 * for the temp region. Both are in the lower half, which PVM lets a guest use.
 */
#define _GNU_SOURCE
#include "oracle.h"

#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hostmem.h"

#define TEMP_REGION 0x200000ull
#define TEMP_SLOT_SIZE 0x10000ull
#define OFF_PML4 0x0000
#define OFF_PDPT_DATA 0x1000
#define OFF_PD_DATA 0x2000
#define OFF_PDPT_CODE 0x6000
#define OFF_PD_CODE 0x7000
#define OFF_CODE 0x8000
#define OFF_STACK_TOP 0xa000
#define OFF_MARKER TEMP_SLOT_SIZE
#define DATA_VA 0x100000000000ull /* PML4 index 32 */
#define CODE_VA 0x200000000000ull /* PML4 index 64 */
#define FOUR_GIB 0x100000000ull

/* Older UAPI headers (before 6.8) lack the memory-fault exit; its layout is fixed ABI. */
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
struct memory_fault_exit {
	uint64_t flags, gpa, size;
};

/* Code page: entry points (offsets inside the code page). */
#define CODE_ACCESS(write, size_idx) ((unsigned)(((write) ? 4 : 0) + (size_idx)) * 16u)
#define CODE_MARKER_ONLY 0x80u
#define CODE_TOUCH_WRITE 0xa0u
#define CODE_TOUCH_READ 0xc0u

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_AM (1ull << 18)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_CR4_OSFXSR (1ull << 9)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NX (1ull << 11)

const char *const guest_stat_names[GUEST_NSTATS] = {
	"exits", "pf_taken", "pf_fixed", "pf_emulate", "pf_spurious", "pf_guest", "insn_emulation", "mmio_exits",
};

static int vcpu_fd = -1;
static int stats_fd = -1;
static uint64_t stat_off[GUEST_NSTATS]; /* file offsets of the values; UINT64_MAX: not offered */
static struct kvm_run *run;
static struct kvm_sregs sregs_tmpl;
static uint64_t guest_phys_limit; /* 2^MAXPHYADDR of the guest's CPUID */
static uint8_t *tmem;             /* host memory behind the temp slot */
static uint64_t tables_for = UINT64_MAX; /* the T the page tables in tmem were built for */
static bool temp_present, probed;
static uint32_t temp_id;
static uint64_t temp_gpa;

static void vcpu_stats_init(void);
static void vcpu_stats_read(uint64_t v[GUEST_NSTATS]);

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof *s);
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 3;
	s->s = 1;
	s->g = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
}

static void write_code(void)
{
	uint8_t *c = tmem + OFF_CODE;
	memset(c, 0xf4, 0x1000); /* hlt: at CPL 3 a #GP, a triple fault here: never reached */
	/* One access, then `mov [rsi], cl` (the end marker), then hlt. */
	static const uint8_t access[8][4] = {
		{ 0x0f, 0xb6, 0x07 },       /* movzx eax, byte [rdi] */
		{ 0x0f, 0xb7, 0x07 },       /* movzx eax, word [rdi] */
		{ 0x8b, 0x07 },             /* mov eax, [rdi] */
		{ 0x48, 0x8b, 0x07 },       /* mov rax, [rdi] */
		{ 0x88, 0x07 },             /* mov [rdi], al */
		{ 0x66, 0x89, 0x07 },       /* mov [rdi], ax */
		{ 0x89, 0x07 },             /* mov [rdi], eax */
		{ 0x48, 0x89, 0x07 },       /* mov [rdi], rax */
	};
	static const uint8_t alen[8] = { 3, 3, 2, 3, 2, 3, 2, 3 };
	for (unsigned k = 0; k < 8; k++) {
		uint8_t *p = c + k * 16;
		memcpy(p, access[k], alen[k]);
		p[alen[k]] = 0x88; /* mov [rsi], cl */
		p[alen[k] + 1] = 0x0e;
	}
	c[CODE_MARKER_ONLY] = 0x88;
	c[CODE_MARKER_ONLY + 1] = 0x0e;
	/* touch loops: rdi = first VA, rcx = pages (> 0), rax = value */
	static const uint8_t tw[] = {
		0x48, 0x89, 0x07,                         /* 1: mov [rdi], rax */
		0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, /* add rdi, 0x1000 */
		0x48, 0xff, 0xc9,                         /* dec rcx */
		0x75, 0xf1,                               /* jnz 1b */
		0x88, 0x0e,                               /* mov [rsi], cl */
	};
	static const uint8_t tr[] = {
		0x48, 0x8b, 0x17,                         /* 1: mov rdx, [rdi] */
		0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, /* add rdi, 0x1000 */
		0x48, 0xff, 0xc9,                         /* dec rcx */
		0x75, 0xf1,                               /* jnz 1b */
		0x88, 0x0e,                               /* mov [rsi], cl */
	};
	memcpy(c + CODE_TOUCH_WRITE, tw, sizeof tw);
	memcpy(c + CODE_TOUCH_READ, tr, sizeof tr);
}

static void build_tables(uint64_t t)
{
	if (tables_for == t)
		return;
	memset(tmem, 0, OFF_CODE);
	uint64_t *pml4 = (uint64_t *)(tmem + OFF_PML4);
	uint64_t *pdpt_d = (uint64_t *)(tmem + OFF_PDPT_DATA);
	uint64_t *pd_d = (uint64_t *)(tmem + OFF_PD_DATA);
	uint64_t *pdpt_c = (uint64_t *)(tmem + OFF_PDPT_CODE);
	uint64_t *pd_c = (uint64_t *)(tmem + OFF_PD_CODE);
	const uint64_t f = PTE_P | PTE_RW | PTE_US;
	pml4[(DATA_VA >> 39) & 511] = (t + OFF_PDPT_DATA) | f;
	for (uint64_t i = 0; i < 4; i++)
		pdpt_d[i] = (t + OFF_PD_DATA + i * 0x1000) | f;
	/*
	 * Data PDEs start Accessed and Dirty. Under shadow paging KVM maps a read writable only when
	 * the guest PTE is already Dirty (FNAME(gpte_access), paging_tmpl.h); without D, whether a
	 * read sets a dirty-log bit would depend on earlier guest writes anywhere in the same 2 MiB,
	 * which the protocol cannot see.
	 */
	for (uint64_t i = 0; i < 2048; i++)
		pd_d[i] = (i << 21) | f | PTE_PS | PTE_A | PTE_D;
	pml4[(CODE_VA >> 39) & 511] = (t + OFF_PDPT_CODE) | f;
	pdpt_c[0] = (t + OFF_PD_CODE) | f;
	pd_c[0] = t | f | PTE_PS;
	tables_for = t;
}

static int get_supported_cpuid(oracle_t *o, struct kvm_cpuid2 **out)
{
	for (uint32_t n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
		c->nent = n;
		if (ioctl(o->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return -e;
	}
	return -E2BIG;
}

static void vcpu_init(oracle_t *o)
{
	if (vcpu_fd >= 0)
		return;
	struct kvm_cpuid2 *cpuid = NULL;
	int r = get_supported_cpuid(o, &cpuid);
	if (r)
		oracle_unavailable("kvm-oracle: KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
	vcpu_fd = ioctl(o->vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		oracle_unavailable("kvm-oracle: KVM_CREATE_VCPU failed: %s", strerror(errno));
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid))
		oracle_unavailable("kvm-oracle: KVM_SET_CPUID2 failed: %s", strerror(errno));
	guest_phys_limit = 1ull << 36; /* KVM's default without a 0x80000008 leaf */
	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 0x80000008) {
			unsigned bits = cpuid->entries[i].eax & 0xff;
			if (bits >= 32 && bits <= 52)
				guest_phys_limit = 1ull << bits;
		}
	free(cpuid);
	vcpu_stats_init();
	int sz = ioctl(o->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0)
		oracle_unavailable("kvm-oracle: KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
	run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED)
		oracle_unavailable("kvm-oracle: mmap of the vCPU's kvm_run failed: %s", strerror(errno));
	tmem = mmap(NULL, TEMP_SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmem == MAP_FAILED)
		oracle_unavailable("kvm-oracle: cannot allocate guest memory: %s", strerror(errno));
	write_code();
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs_tmpl))
		oracle_unavailable("kvm-oracle: KVM_GET_SREGS failed: %s", strerror(errno));
	/* 64-bit long mode with 4-level paging; user (DPL 3) segments as Linux's __USER_CS/__USER_DS. */
	sregs_tmpl.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | X86_CR0_PG;
	sregs_tmpl.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
	sregs_tmpl.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NX;
	set_seg(&sregs_tmpl.cs, 0x33, 0xb, true);
	set_seg(&sregs_tmpl.ss, 0x2b, 0x3, false);
	sregs_tmpl.ds = sregs_tmpl.es = sregs_tmpl.fs = sregs_tmpl.gs = sregs_tmpl.ss;
	memset(sregs_tmpl.interrupt_bitmap, 0, sizeof sregs_tmpl.interrupt_bitmap);
	/*
	 * PVM: the CPL can only be chosen before the vCPU first runs (pvm_set_segment()), so this
	 * first KVM_SET_SREGS, with CS.DPL 3, puts the vCPU in user mode for good.
	 */
	sregs_tmpl.cr3 = 0;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs_tmpl))
		oracle_unavailable("kvm-oracle: KVM_SET_SREGS (64-bit, CPL 3) failed: %s", strerror(errno));
}

/* Locate the vCPU statistics we report with --stats (KVM_GET_STATS_FD, binary stats). */
static void vcpu_stats_init(void)
{
	for (int i = 0; i < GUEST_NSTATS; i++)
		stat_off[i] = UINT64_MAX;
	stats_fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (stats_fd < 0)
		return;
	struct kvm_stats_header h;
	if (pread(stats_fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
		return;
	size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	char *descs = malloc(dsz * h.num_desc);
	if (pread(stats_fd, descs, dsz * h.num_desc, h.desc_offset) == (ssize_t)(dsz * h.num_desc)) {
		for (uint32_t k = 0; k < h.num_desc; k++) {
			struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + k * dsz);
			const char *name = (const char *)(d + 1);
			for (int i = 0; i < GUEST_NSTATS; i++)
				if (strncmp(name, guest_stat_names[i], h.name_size) == 0)
					stat_off[i] = h.data_offset + d->offset;
		}
	}
	free(descs);
}

static void vcpu_stats_read(uint64_t v[GUEST_NSTATS])
{
	for (int i = 0; i < GUEST_NSTATS; i++) {
		v[i] = 0;
		if (stats_fd >= 0 && stat_off[i] != UINT64_MAX)
			if (pread(stats_fd, &v[i], sizeof v[i], (off_t)stat_off[i]) != (ssize_t)sizeof v[i])
				v[i] = 0;
	}
}

typedef struct {
	uint64_t s, e;
} span;

static int cmp_span(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return x->s < y->s ? -1 : x->s > y->s;
}

/* Choose id and T for the temp slot and create it. 0, or a negative errno (ENOSPC: no room). */
static int temp_setup(oracle_t *o, guest_result *r)
{
	if (temp_present)
		return 0;
	int id = -1;
	int max = o->nr_memslots < MAX_SLOT_IDS ? o->nr_memslots : MAX_SLOT_IDS;
	for (int i = max - 1; i >= 0; i--)
		if (!o->slots[i].present) {
			id = i;
			break;
		}
	if (id < 0) {
		snprintf(r->error, sizeof r->error, "no free memslot id for the oracle's temporary slot");
		return -ENOSPC;
	}
	span *v = malloc(MAX_SLOT_IDS * sizeof *v);
	size_t n = 0;
	for (int i = 0; i < MAX_SLOT_IDS; i++)
		if (o->slots[i].present)
			v[n++] = (span){ o->slots[i].gpa, o->slots[i].gpa + o->slots[i].size };
	qsort(v, n, sizeof *v, cmp_span);
	uint64_t t = FOUR_GIB;
	for (size_t i = 0; i < n; i++) {
		if (v[i].e <= t)
			continue;
		if (v[i].s >= t + TEMP_REGION)
			break;
		t = (v[i].e + TEMP_REGION - 1) & ~(TEMP_REGION - 1);
	}
	free(v);
	if (t < FOUR_GIB || t + TEMP_REGION > guest_phys_limit) {
		snprintf(r->error, sizeof r->error, "no free guest-physical 2 MiB at or above 4 GiB for the oracle's temporary slot");
		return -ENOSPC;
	}
	build_tables(t);
	struct kvm_userspace_memory_region m = {
		.slot = (uint32_t)id, .flags = 0, .guest_phys_addr = t, .memory_size = TEMP_SLOT_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)tmem,
	};
	if (ioctl(o->vm_fd, KVM_SET_USER_MEMORY_REGION, &m)) {
		int e = errno;
		snprintf(r->error, sizeof r->error, "creating the temporary slot %d at 0x%llx failed: %s", id, (unsigned long long)t, strerror(e));
		return -e;
	}
	temp_present = true;
	temp_id = (uint32_t)id;
	temp_gpa = t;
	return 0;
}

static void temp_teardown(oracle_t *o)
{
	if (!temp_present)
		return;
	struct kvm_userspace_memory_region m = {
		.slot = temp_id, .flags = 0, .guest_phys_addr = temp_gpa, .memory_size = 0,
		.userspace_addr = (uint64_t)(uintptr_t)tmem,
	};
	if (ioctl(o->vm_fd, KVM_SET_USER_MEMORY_REGION, &m))
		fprintf(stderr, "kvm-oracle: deleting the temporary slot %u failed: %s\n", temp_id, strerror(errno));
	temp_present = false;
}

void guest_before_slot_change(oracle_t *o, uint32_t slot, uint64_t gpa, uint64_t size)
{
	if (!temp_present)
		return;
	uint64_t end = gpa + size < gpa ? UINT64_MAX : gpa + size;
	bool same_id = (slot >> 16) == 0 && (slot & 0xffff) == temp_id;
	bool overlap = size != 0 && gpa < temp_gpa + TEMP_REGION && end > temp_gpa;
	if (same_id || overlap)
		temp_teardown(o);
}

static void run_loop(uint64_t marker, uint64_t max_runs, guest_result *r);

/*
 * Watchdog: a guest that never reaches its marker would block KVM_RUN forever. SIGALRM (without
 * SA_RESTART) makes KVM_RUN return EINTR; the op then answers EIO instead of hanging the caller.
 */
static volatile sig_atomic_t watchdog_fired;

static void on_alarm(int sig)
{
	(void)sig;
	watchdog_fired = 1;
}

static void watchdog_arm(uint64_t seconds)
{
	static bool installed;
	if (!installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0; /* no SA_RESTART: interrupt KVM_RUN */
		sigaction(SIGALRM, &sa, NULL);
		installed = true;
	}
	watchdog_fired = 0;
	struct itimerval it = { .it_value = { .tv_sec = (time_t)seconds } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void watchdog_disarm(void)
{
	struct itimerval it = { 0 };
	setitimer(ITIMER_REAL, &it, NULL);
}

/*
 * Run the guest from code offset `entry` until it stores to the end marker. The first MMIO exit
 * elsewhere is recorded; reads are completed with 0.
 */
static void run_guest(oracle_t *o, unsigned entry, struct kvm_regs *regs, uint64_t max_runs, guest_result *r)
{
	(void)o;
	struct kvm_sregs s = sregs_tmpl;
	s.cr3 = temp_gpa + OFF_PML4;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &s)) {
		r->ret = -errno;
		snprintf(r->error, sizeof r->error, "KVM_SET_SREGS failed: %s", strerror(errno));
		return;
	}
	regs->rip = CODE_VA + OFF_CODE + entry;
	regs->rsp = CODE_VA + OFF_STACK_TOP;
	regs->rflags = 0x2;
	regs->rsi = CODE_VA + OFF_MARKER;
	if (ioctl(vcpu_fd, KVM_SET_REGS, regs)) {
		r->ret = -errno;
		snprintf(r->error, sizeof r->error, "KVM_SET_REGS failed: %s", strerror(errno));
		return;
	}
	const uint64_t marker = temp_gpa + OFF_MARKER;
	uint64_t before[GUEST_NSTATS];
	vcpu_stats_read(before);
	watchdog_arm(30 + max_runs / 20000); /* x_guest_touch of many pages gets longer */
	run_loop(marker, max_runs, r);
	watchdog_disarm();
	vcpu_stats_read(r->stats);
	for (int i = 0; i < GUEST_NSTATS; i++)
		r->stats[i] -= before[i];
}

static void run_loop(uint64_t marker, uint64_t max_runs, guest_result *r)
{
	for (;;) {
		if (r->runs >= max_runs) {
			r->ret = -EIO;
			snprintf(r->error, sizeof r->error, "the guest did not reach its end marker after %llu KVM_RUN calls",
				 (unsigned long long)r->runs);
			return;
		}
		uint64_t t0 = now_ns();
		int rc = ioctl(vcpu_fd, KVM_RUN, 0);
		int e = errno;
		r->ns += now_ns() - t0;
		r->runs++;
		if (rc < 0) {
			if (e == EINTR && watchdog_fired) {
				r->ret = -EIO;
				snprintf(r->error, sizeof r->error, "the guest did not reach its end marker within the watchdog's time");
				return;
			}
			if (e == EINTR || e == EAGAIN)
				continue;
			r->ret = -e;
			if (run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
				struct memory_fault_exit mf;
				memcpy(&mf, &run->mmio, sizeof mf); /* the exit union starts where mmio does */
				snprintf(r->error, sizeof r->error, "KVM_RUN: %s, KVM_EXIT_MEMORY_FAULT gpa 0x%llx size 0x%llx flags 0x%llx",
					 strerror(e), (unsigned long long)mf.gpa, (unsigned long long)mf.size, (unsigned long long)mf.flags);
			} else {
				snprintf(r->error, sizeof r->error, "KVM_RUN: %s (exit reason %u)", strerror(e), run->exit_reason);
			}
			return;
		}
		if (run->exit_reason == KVM_EXIT_MMIO) {
			if (run->mmio.is_write && run->mmio.phys_addr == marker)
				return; /* done */
			r->mmio_exits++;
			if (!r->mmio) {
				r->mmio = true;
				r->phys_addr = run->mmio.phys_addr;
				r->len = run->mmio.len;
				r->is_write = run->mmio.is_write;
				if (r->is_write) {
					uint64_t d = 0;
					memcpy(&d, run->mmio.data, r->len <= 8 ? r->len : 8);
					r->data = d;
				}
			}
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0, sizeof run->mmio.data);
			continue;
		}
		r->ret = -EIO;
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
			snprintf(r->error, sizeof r->error, "unexpected KVM_EXIT_INTERNAL_ERROR (suberror %u)", run->internal.suberror);
		else if (run->exit_reason == KVM_EXIT_SHUTDOWN)
			snprintf(r->error, sizeof r->error, "unexpected KVM_EXIT_SHUTDOWN (guest triple fault)");
		else
			snprintf(r->error, sizeof r->error, "unexpected exit reason %u", run->exit_reason);
		return;
	}
}

/* Prepare vCPU and temp slot; on the first success check that the guest can run at all. */
static int prepare(oracle_t *o, guest_result *r)
{
	vcpu_init(o);
	int e = temp_setup(o, r);
	if (e)
		return e;
	if (!probed) {
		guest_result p;
		memset(&p, 0, sizeof p);
		struct kvm_regs regs;
		memset(&regs, 0, sizeof regs);
		run_guest(o, CODE_MARKER_ONLY, &regs, 16, &p);
		if (p.ret != 0 || p.mmio)
			oracle_unavailable("kvm-oracle: cannot run a 64-bit CPL-3 guest on this host: %s",
					   p.ret != 0 ? p.error : "the guest left with an unexpected MMIO exit");
		probed = true;
	}
	return 0;
}

static void finish(oracle_t *o)
{
	if (!o->keep_guest)
		temp_teardown(o);
}

void guest_access(oracle_t *o, uint64_t gpa, int size, bool write, uint64_t value, guest_result *r)
{
	memset(r, 0, sizeof *r);
	int e = prepare(o, r);
	if (e) {
		r->ret = e;
		finish(o);
		return;
	}
	int idx = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
	struct kvm_regs regs;
	memset(&regs, 0, sizeof regs);
	regs.rdi = DATA_VA + gpa;
	regs.rax = write ? value : 0;
	run_guest(o, CODE_ACCESS(write, idx), &regs, 64, r);
	if (r->ret == 0 && !r->mmio && !write) {
		struct kvm_regs out;
		if (ioctl(vcpu_fd, KVM_GET_REGS, &out)) {
			r->ret = -errno;
			snprintf(r->error, sizeof r->error, "KVM_GET_REGS failed: %s", strerror(errno));
		} else {
			r->value = size == 8 ? out.rax : out.rax & ((1ull << (8 * size)) - 1);
		}
	}
	finish(o);
}

void guest_touch(oracle_t *o, uint64_t gpa, uint32_t npages, bool write, uint64_t value, guest_result *r)
{
	memset(r, 0, sizeof *r);
	int e = prepare(o, r);
	if (e) {
		r->ret = e;
		finish(o);
		return;
	}
	struct kvm_regs regs;
	memset(&regs, 0, sizeof regs);
	regs.rdi = DATA_VA + gpa;
	regs.rcx = npages;
	regs.rax = value;
	unsigned entry = npages == 0 ? CODE_MARKER_ONLY : write ? CODE_TOUCH_WRITE : CODE_TOUCH_READ;
	run_guest(o, entry, &regs, 4ull * npages + 64, r);
	finish(o);
}
