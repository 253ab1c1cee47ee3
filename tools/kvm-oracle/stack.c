/*
 * Move the oracle off the kernel-placed process stack, which sits right below TASK_SIZE
 * (0x7ffffffff000 without address-space randomization) exactly where sequences probe the top of
 * the user address space. We switch to a stack mmap()ed wherever the kernel likes (next to the
 * libraries), copy what still points into the old stack (environment, program name), and unmap
 * the old [stack] mapping, so the top 128 MiB below TASK_SIZE are free for the sequence.
 */
#define _GNU_SOURCE
#include "stack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

extern char **environ;

#define NEW_STACK_SIZE (8ul << 20)

static ucontext_t old_ctx, new_ctx;
static int (*entry_fn)(void *);
static void *entry_arg;
static unsigned long old_lo, old_hi;

static void trampoline(void)
{
	/* Now on the new stack: nothing of ours lives in the old one any more. */
	if (old_hi > old_lo)
		munmap((void *)old_lo, old_hi - old_lo);
	exit(entry_fn(entry_arg));
}

static int find_old_stack(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &a, &b) == 2) {
			old_lo = a;
			old_hi = b;
			found = 0;
		}
	}
	fclose(f);
	return found;
}

int run_on_private_stack(int (*fn)(void *), void *arg)
{
	entry_fn = fn;
	entry_arg = arg;
	if (find_old_stack())
		return fn(arg);
	/* Copies of everything glibc keeps pointing into the old stack that we may still use. */
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 1, sizeof *env);
	for (size_t i = 0; i < n; i++)
		env[i] = strdup(environ[i]);
	environ = env;
	program_invocation_name = strdup(program_invocation_name ? program_invocation_name : "kvm-oracle");
	program_invocation_short_name = strdup(program_invocation_short_name ? program_invocation_short_name : "kvm-oracle");

	void *stk = mmap(NULL, NEW_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stk == MAP_FAILED || getcontext(&new_ctx))
		return fn(arg);
	new_ctx.uc_stack.ss_sp = stk;
	new_ctx.uc_stack.ss_size = NEW_STACK_SIZE;
	new_ctx.uc_link = NULL;
	makecontext(&new_ctx, trampoline, 0);
	if (swapcontext(&old_ctx, &new_ctx))
		return fn(arg);
	return 0; /* not reached: trampoline exits */
}
