/* Running the oracle on a stack of its own, away from the top of the user address space. */
#ifndef KVM_ORACLE_STACK_H
#define KVM_ORACLE_STACK_H

/* Calls fn(arg) on a freshly mapped stack after unmapping the initial one; exits with its result. */
int run_on_private_stack(int (*fn)(void *), void *arg);

#endif
