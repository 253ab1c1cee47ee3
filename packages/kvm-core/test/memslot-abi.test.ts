/**
 * The memslot ABI: rows of the errno table (kvm-generic.md §8) that need more than replay
 * protocol v1 can say (v2 ioctl, dead VM, all 32764 slots), the selftest set_memory_region_test
 * cases that apply (§7.1), and the change-kind decision. The v1-expressible rows run as the
 * built-in replay scenario (replay-errno-table.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { KVM_MEMSLOT_INVALID, KvmError, isKvmError, memslotsGenerationU64 } from '../src/index.js';
import { MiB, STORES, errnoOf, mkVm, region, set } from './support/vm.js';

describe.each(STORES)('memslot ABI (%s store)', (store) => {
  it('V5/V7: v2 with an undefined flag bit (bit 3, bit 31) is EINVAL', () => {
    const { kvm } = mkVm(store);
    expect(set(kvm, region(0, 0n, 2n * MiB, 0x7f0000000000n, 1 << 3), true)).toBe('EINVAL');
    expect(set(kvm, region(0, 0n, 2n * MiB, 0x7f0000000000n, 0x80000000), true)).toBe('EINVAL');
  });

  it('V35: v2 garbage in guest_memfd fields without KVM_MEM_GUEST_MEMFD is ignored', () => {
    const { kvm } = mkVm(store);
    const r = { ...region(0, 0n, 2n * MiB), guestMemfd: 0xdeadbeef, guestMemfdOffset: 0x123n };
    expect(set(kvm, r, true)).toBe(0);
  });

  it('G5/G6: GUEST_MEMFD excludes LOG_DIRTY_PAGES and READONLY (flag check)', () => {
    const { kvm } = mkVm(store);
    expect(set(kvm, region(0, 0n, 2n * MiB, 0x7f0000000000n, 4 | 1), true)).toBe('EINVAL');
    expect(set(kvm, region(0, 0n, 2n * MiB, 0x7f0000000000n, 4 | 2), true)).toBe('EINVAL');
  });

  it('G7/G8: guest_memfd_offset misaligned or offset+size wrapping is EINVAL', () => {
    const { kvm } = mkVm(store);
    expect(set(kvm, { ...region(0, 0n, 2n * MiB, 0x7f0000000000n, 4), guestMemfdOffset: 0x800n }, true)).toBe('EINVAL');
    expect(set(kvm, { ...region(0, 0n, 2n * MiB, 0x7f0000000000n, 4), guestMemfdOffset: 0xfffffffffffff000n }, true)).toBe('EINVAL');
  });

  it('G9/G16/G17: a bad guest_memfd fd is EBADF, but a GPA overlap is found first (EEXIST)', () => {
    const { kvm } = mkVm(store);
    expect(set(kvm, { ...region(0, 0n, 2n * MiB, 0x7f0000000000n, 4), guestMemfd: 0xffffffff }, true)).toBe('EBADF');
    expect(set(kvm, region(1, 0n, 2n * MiB))).toBe(0);
    expect(set(kvm, { ...region(2, MiB, 2n * MiB, 0x7f0000000000n, 4), guestMemfd: 0xffffffff }, true)).toBe('EEXIST');
  });

  it('selftest test_invalid_memory_region_flags: every one of the 32 flag bits (§7.1 case 3)', () => {
    // Supported: LOG_DIRTY_PAGES | READONLY on x86; GUEST_MEMFD is v2-only (and then needs a fd).
    const supported = 0x1 | 0x2;
    const v2Only = 0x4;
    for (let i = 0; i < 32; i++) {
      const bit = 2 ** i;
      const { kvm } = mkVm(store);
      const r = region(0, 0n, 2n * MiB, 0x7f0000000000n, bit);
      if (!(bit & supported)) expect(set(kvm, r), `v1 bit ${i}`).toBe('EINVAL');
      else expect(set(kvm, r), `v1 bit ${i}`).toBe(0);
      const { kvm: k2 } = mkVm(store);
      const v2 = set(k2, r, true);
      if (bit & v2Only) expect(v2, `v2 bit ${i}`).toBe('EBADF'); // valid flag; the model has no guest_memfd file
      else if (!(bit & supported)) expect(v2, `v2 bit ${i}`).toBe('EINVAL');
      else expect(v2, `v2 bit ${i}`).toBe(0);
    }
  });

  it('V36: every ioctl of a dead VM is EIO', () => {
    const { kvm } = mkVm(store);
    kvm.vmDead = true;
    expect(set(kvm, region(0, 0n, 2n * MiB))).toBe('EIO');
    expect(errnoOf(() => kvm.getDirtyLog(0))).toBe('EIO');
  });

  it('X1/X3: all 32764 user slots can be created; id 32764 is EINVAL; all can be deleted', { timeout: 120_000 }, () => {
    const { kvm } = mkVm(store);
    expect(kvm.checkExtension('KVM_CAP_NR_MEMSLOTS')).toBe(32764);
    for (let i = 0; i < 32764; i++) {
      expect(set(kvm, region(i, BigInt(i) * 2n * MiB, 2n * MiB, 0x7f0000000000n))).toBe(0);
    }
    expect(set(kvm, region(32764, 32764n * 2n * MiB, 2n * MiB))).toBe('EINVAL');
    expect(kvm.kvmMemslots(0).size).toBe(32764);
    expect(kvm.nrMemslotPages).toBe(32764 * 512);
    for (let i = 0; i < 32764; i++) expect(set(kvm, region(i, 0n, 0n))).toBe(0);
    expect(kvm.kvmMemslots(0).size).toBe(0);
    expect(kvm.nrMemslotPages).toBe(0);
  });

  it('errors carry the errno name, the negative value and a message naming the rule', () => {
    const { kvm } = mkVm(store);
    try {
      kvm.setUserMemoryRegion(region(32764, 0n, 2n * MiB));
      expect.unreachable();
    } catch (e) {
      expect(isKvmError(e)).toBe(true);
      const err = e as KvmError;
      expect(err.errno).toBe('EINVAL');
      expect(err.ret).toBe(-22);
      expect(err.message).toMatch(/KVM_USER_MEM_SLOTS \(32764\)/);
    }
  });

  it('two address spaces (x86 with SMM): as_id 1 works, generations stay ≡ as_id (mod 2)', () => {
    const { kvm } = mkVm(store, { capabilities: { nrAddressSpaces: 2 } });
    expect(kvm.checkExtension('KVM_CAP_MULTI_ADDRESS_SPACE')).toBe(2);
    expect(set(kvm, region(0, 0n, 2n * MiB))).toBe(0);
    expect(set(kvm, region(0x10000, 0n, 2n * MiB))).toBe(0); // same gpa, other AS: no overlap
    expect(set(kvm, region(0x20000, 0n, 2n * MiB))).toBe('EINVAL');
    expect(kvm.kvmMemslots(0).generation).toBe(2);
    expect(kvm.kvmMemslots(1).generation).toBe(3);
    expect(set(kvm, region(0x10000, 4n * MiB, 2n * MiB))).toBe(0); // MOVE: +2N
    expect(kvm.kvmMemslots(1).generation).toBe(7);
  });

  it('a readonly-less architecture rejects KVM_MEM_READONLY', () => {
    const { kvm } = mkVm(store, { profile: 'generic' });
    expect(kvm.checkExtension('KVM_CAP_READONLY_MEM')).toBe(0);
    expect(set(kvm, region(0, 0n, 2n * MiB, 0x7f0000000000n, 2))).toBe('EINVAL');
  });

  it('access_ok: a slot may end exactly at TASK_SIZE_MAX but not one page later', () => {
    const { kvm } = mkVm(store);
    expect(set(kvm, region(0, 0n, 0x2000n, 0x7fffffffd000n))).toBe(0);
    expect(set(kvm, region(1, 0x10000n, 0x2000n, 0x7fffffffe000n))).toBe('EINVAL');
    // DELETE checks uaddr too: an unaligned or kernel uaddr fails even with size 0
    expect(set(kvm, region(0, 0n, 0n, 0xffff888000000000n))).toBe('EINVAL');
  });

  it('the generation bit 63 is modelled at 2^52 and converts back to the u64', () => {
    expect(memslotsGenerationU64(5)).toBe(5n);
    expect(memslotsGenerationU64(2 ** 52 + 5)).toBe((1n << 63n) | 5n);
  });

  it('DELETE and MOVE pass through an INVALID copy; the old gpa then finds no slot', () => {
    const { kvm, arch } = mkVm(store);
    expect(set(kvm, region(10, 0xc0000000n, 2n * MiB))).toBe(0);
    expect(set(kvm, region(10, 0xd0000000n, 2n * MiB))).toBe(0);
    const flush = arch.calls.find((c) => c.hook === 'kvm_arch_flush_shadow_memslot');
    expect(flush?.old).toBe(10);
    expect(kvm.gfnToMemslot(0xc0000)).toBeNull();
    expect(kvm.gfnToMemslot(0xd0000)?.id).toBe(10);
    expect((kvm.gfnToMemslot(0xd0000)!.flags & KVM_MEMSLOT_INVALID) === 0).toBe(true);
  });
});
