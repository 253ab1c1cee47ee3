/* Shared state of the kvm-oracle process: one VM, one lazily created vCPU, the sequence's slots. */
#ifndef KVM_ORACLE_H
#define KVM_ORACLE_H

#include <stdbool.h>
#include <stdint.h>

#define ORACLE_UNAVAILABLE 77 /* exit status: /dev/kvm (or guest execution) is not usable here */
#define MAX_SLOT_IDS 32768    /* KVM_MEM_SLOTS_NUM on x86 is SHRT_MAX; ids are the low 16 bits */

typedef struct {
	bool present;
	uint32_t flags;
	uint64_t gpa, size;
} seq_slot;

typedef struct {
	int kvm_fd, vm_fd;
	int nr_memslots;            /* KVM_CAP_NR_MEMSLOTS of the VM */
	seq_slot slots[MAX_SLOT_IDS]; /* address space 0 slots made by the sequence */
	bool keep_guest;            /* --keep-guest: leave the temporary slot in place between guest ops */
} oracle_t;

/* vCPU statistics reported with --stats (deltas over one guest op), see guest_stat_names. */
#define GUEST_NSTATS 8
extern const char *const guest_stat_names[GUEST_NSTATS];

/* A guest access's outcome, for the protocol's answer. */
typedef struct {
	int ret;           /* 0 or -errno */
	bool mmio;         /* exit "mmio" (else "none" when ret == 0) */
	uint64_t value;    /* read that hit RAM */
	uint64_t phys_addr;
	uint32_t len;
	bool is_write;
	uint64_t data;     /* mmio write data */
	uint64_t ns;       /* time inside KVM_RUN */
	uint64_t runs;     /* KVM_RUN calls */
	uint64_t mmio_exits;
	uint64_t stats[GUEST_NSTATS];
	char error[256];
} guest_result;

/* One aligned access of size bytes at gpa (< 4 GiB) by a 64-bit guest at CPL 3. */
void guest_access(oracle_t *o, uint64_t gpa, int size, bool write, uint64_t value, guest_result *r);
/* x_guest_touch: 8 bytes at the start of each 4 KiB page of [gpa, gpa + npages * 4096). */
void guest_touch(oracle_t *o, uint64_t gpa, uint32_t npages, bool write, uint64_t value, guest_result *r);
/* The sequence is about to change slot `slot` to cover [gpa, gpa + size): make room (--keep-guest). */
void guest_before_slot_change(oracle_t *o, uint32_t slot, uint64_t gpa, uint64_t size);

/* Print one line on stderr and exit with ORACLE_UNAVAILABLE. */
_Noreturn void oracle_unavailable(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
