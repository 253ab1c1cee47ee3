/*
 * The sequence's host address space: mmap/munmap/madvise on the real process, with the ranges the
 * sequence mapped tracked so that (1) host_read/host_write answer EFAULT outside them, and (2) no
 * op ever unmaps or discards memory the oracle itself lives in.
 */
#ifndef KVM_ORACLE_HOSTMEM_H
#define KVM_ORACLE_HOSTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* TASK_SIZE of a 64-bit x86-64 process with 4-level paging. */
#define ORACLE_TASK_SIZE 0x7ffffffff000ull

/*
 * Each returns 0 or a negative errno; *note gets a human-readable remark (or stays "") when the
 * answer depended on a mapping of the oracle process itself. *ns: time spent in the syscalls.
 */
int hm_mmap(uint64_t addr, uint64_t length, char *note, size_t notelen, uint64_t *ns);
int hm_munmap(uint64_t addr, uint64_t length, char *note, size_t notelen, uint64_t *ns);
int hm_madvise_dontneed(uint64_t addr, uint64_t length, char *note, size_t notelen, uint64_t *ns);
/* size ∈ {1,2,4,8}; little-endian; EFAULT unless every byte lies in a sequence mapping. */
int hm_read(uint64_t addr, int size, uint64_t *value, uint64_t *ns);
int hm_write(uint64_t addr, int size, uint64_t value, uint64_t *ns);

uint64_t now_ns(void);

#endif
