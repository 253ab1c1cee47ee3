/**
 * Guest-visible semantics through the vCPU (kvm-generic.md §6–§7): what a guest reads and writes
 * after host writes, DONTNEED, MOVE, DELETE, READONLY and dirty logging. A stale secondary
 * mapping or a stale cached MMIO entry shows up as a wrong value or a wrong exit. The same
 * scenarios, as replay lines, run against a real kernel (replay-cases.ts).
 */
import { KvmVcpu, type Kvm } from '@kvmsim/kvm-core';
import { checkMmuCoherence, checkNotifierQuiescent } from '@kvmsim/kvm-core/testing';
import { assert, defineCase, errnoOf, GPA, HVA, MiB, needsVcpu, PAGE, region, seen, withSlot } from '../harness.js';
import type { ConformanceCase } from '../types.js';

const MB = 0x100000;

export const guestVisibleCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'guest-visible/host-write-dontneed-rewrite',
    group: 'guest-visible',
    title: 'host write → guest read; DONTNEED → 0; host writes again → the new value; guest writes reach the host page',
    see: 'kvm-generic.md §7.1; virt/kvm/kvm_main.c kvm_mmu_notifier_invalidate_range_start() (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      const v = kvm.createVcpu(0);
      kvm.host.write(BigInt(HVA), 8, 0x1111n);
      assert.equal(seen(v.read(GPA, 8)), '0x1111');
      const faults = v.faults;
      assert.equal(seen(v.read(GPA, 8)), '0x1111');
      assert.equal(v.faults, faults, 'the second access faulted again: nothing was mapped');
      kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
      assert.equal(seen(v.read(GPA, 8)), '0x0');
      kvm.host.write(BigInt(HVA), 8, 0x2222n);
      assert.equal(seen(v.read(GPA, 8)), '0x2222');
      v.write(GPA + 8, 8, 0x3333n);
      assert.equal(kvm.host.read(BigInt(HVA + 8), 8), 0x3333n);
    },
  }),
  defineCase({
    id: 'guest-visible/move-delete',
    group: 'guest-visible',
    title: 'MOVE → the old gpa is MMIO and the new gpa shows the data; DELETE → MMIO',
    see: 'kvm-generic.md §2.4; virt/kvm/kvm_main.c kvm_invalidate_memslot(), kvm_arch_flush_shadow_memslot() (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.host.write(BigInt(HVA), 8, 0x1234n);
      const v = kvm.createVcpu(0);
      assert.equal(seen(v.read(GPA, 8)), '0x1234');
      kvm.setUserMemoryRegion(region(1, BigInt(GPA + 16 * MB), 2n * MiB, BigInt(HVA)));
      assert.equal(seen(v.read(GPA, 8)), 'mmio');
      assert.equal(seen(v.read(GPA + 16 * MB, 8)), '0x1234');
      kvm.setUserMemoryRegion(region(1, BigInt(GPA + 16 * MB), 0n, BigInt(HVA)));
      assert.equal(seen(v.read(GPA + 16 * MB, 8)), 'mmio');
    },
  }),
  defineCase({
    id: 'guest-visible/unbacked-then-create',
    group: 'guest-visible',
    title: 'a read of an unbacked gpa exits to MMIO; a slot created there is seen at once (no stale cached MMIO entry)',
    see: 'kvm-generic.md §7.3; arch/x86/kvm/mmu/mmu.c check_mmio_spte(); commit ddfd1730fd82 "KVM: x86/mmu: Do not cache MMIO accesses while memslots are in flux" (2019)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = ctx.vm();
      kvm.host.mmap(BigInt(HVA), 2n * MiB);
      kvm.host.write(BigInt(HVA), 8, 0x77n);
      const v = kvm.createVcpu(0);
      assert.equal(seen(v.read(GPA, 8)), 'mmio');
      assert.equal(seen(v.read(GPA, 8)), 'mmio');
      kvm.setUserMemoryRegion(region(1, BigInt(GPA), 2n * MiB, BigInt(HVA)));
      assert.equal(seen(v.read(GPA, 8)), '0x77', 'a cached MMIO entry hid the new slot');
    },
  }),
  defineCase({
    id: 'guest-visible/mmio-generation-wrap',
    group: 'guest-visible',
    title: 'when the MMIO generation wraps, every cached MMIO entry goes, in every address space',
    see: 'arch/x86/kvm/mmu/mmu.c kvm_mmu_invalidate_mmio_sptes(); commit "KVM: x86/mmu: Detect MMIO generation wrap in any address space" (2019, the 27-patch MMIO-generation series with 152482580a1b)',
    gate: (env) => needsVcpu(env) ?? (!env.cachesMmio || env.expectations.mmioGenerationBits === null ? 'the vCPU model caches no MMIO translations' : undefined),
    run(ctx) {
      const nr = ctx.caps.nrAddressSpaces;
      const wrap = 2 ** ctx.expectations.mmioGenerationBits!;
      for (let as = 0; as < nr; as++) {
        const kvm = ctx.vm();
        kvm.host.mmap(BigInt(HVA), 2n * MiB);
        kvm.host.write(BigInt(HVA), 8, 0x42n);
        const v = kvm.createVcpu(0);
        v.asId = as;
        assert.equal(seen(v.read(GPA, 8)), 'mmio'); // cached with generation `as`
        // Fast-forward: 2^bits / nr − 1 updates later, the next swap makes the masked generation `as` again.
        const gen = wrap - nr + as;
        kvm.memslots.active(as).generation = gen;
        kvm.memslots.inactive(as).generation = gen;
        kvm.setUserMemoryRegion(region((as << 16) | 1, BigInt(GPA), 2n * MiB, BigInt(HVA)));
        assert.equal(seen(v.read(GPA, 8)), '0x42', `address space ${as}: an MMIO entry from before the wrap matched the new generation`);
      }
    },
  }),
  defineCase({
    id: 'guest-visible/readonly-write',
    group: 'guest-visible',
    title: 'a write to a READONLY slot exits as MMIO with is_write and leaves the host page alone; reads see the data',
    see: 'kvm-generic.md §7.2; virt/kvm/kvm_main.c __gfn_to_hva_many(): KVM_HVA_ERR_RO_BAD (6.18)',
    gate: (env) => needsVcpu(env) ?? (env.caps.readonlyMem ? undefined : 'no KVM_CAP_READONLY_MEM'),
    run(ctx) {
      const kvm = withSlot(ctx.vm(), 2 * MB, 2);
      kvm.host.write(BigInt(HVA), 8, 0x5n);
      const v = kvm.createVcpu(0);
      assert.equal(seen(v.read(GPA, 8)), '0x5');
      assert.deepEqual(v.write(GPA, 8, 0x9n), { exit: 'mmio', physAddr: GPA, len: 8, isWrite: true, data: 0x9n });
      assert.equal(kvm.host.read(BigInt(HVA), 8), 0x5n);
    },
  }),
  defineCase({
    id: 'guest-visible/dirty-bits',
    group: 'guest-visible',
    title: 'guest writes set dirty bits; GET harvests and re-arms (the next write is logged again); CLEAR re-arms under manual protect',
    see: 'kvm-generic.md §5.2–5.3; kvm-arch-backends.md §13.4; virt/kvm/kvm_main.c kvm_get_dirty_log_protect(), kvm_arch_mmu_enable_log_dirty_pt_masked() (6.18)',
    gate: (env) => needsVcpu(env) ?? (env.caps.dirtyLogReadProtect ? undefined : 'no KVM_GENERIC_DIRTYLOG_READ_PROTECT'),
    run(ctx) {
      const kvm = withSlot(ctx.vm(), 2 * MB, 1);
      const v = kvm.createVcpu(0);
      v.read(GPA + PAGE, 8); // a read never dirties
      v.write(GPA + 2 * PAGE, 8, 1n);
      v.write(GPA + 3 * PAGE, 8, 1n);
      assert.equal(kvm.getDirtyLog(1)[0], 0b1100);
      assert.equal(kvm.getDirtyLog(1)[0], 0);
      v.write(GPA + 2 * PAGE, 8, 2n);
      assert.equal(kvm.getDirtyLog(1)[0], 0b0100, 'a harvested page was not re-armed');
      kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [1n]);
      v.write(GPA + 5 * PAGE, 8, 1n);
      assert.equal(kvm.getDirtyLog(1)[0], 0b100000);
      kvm.clearDirtyLog(1, 0n, 64, new Uint8Array(8).fill(0xff));
      assert.equal(kvm.getDirtyLog(1)[0], 0);
      v.write(GPA + 5 * PAGE, 8, 3n);
      assert.equal(kvm.getDirtyLog(1)[0], 0b100000, 'a cleared page was not re-armed');
    },
  }),
  defineCase({
    id: 'guest-visible/unmapped-hva',
    group: 'guest-visible',
    title: 'a slot whose hva is not mapped fails KVM_RUN with EFAULT (KVM_EXIT_MEMORY_FAULT); mapping it makes the access work',
    see: 'virt/kvm/kvm_main.c __kvm_faultin_pfn() → hva_to_pfn() error → -EFAULT (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm: Kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, BigInt(GPA), 2n * MiB, BigInt(HVA)));
      const v: KvmVcpu = kvm.createVcpu(0);
      assert.equal(errnoOf(() => v.read(GPA, 8)), 'EFAULT');
      kvm.host.mmap(BigInt(HVA), 2n * MiB);
      assert.equal(seen(v.read(GPA, 8)), '0x0');
    },
  }),
  defineCase({
    id: 'guest-visible/delete-page-table-slot',
    group: 'guest-visible',
    title: 'deleting the slot that holds the guest\'s page tables drops every translation built from them',
    see: 'arch/x86/kvm/mmu/mmu.c kvm_mmu_zap_memslot_pages_and_flush(): shadow pages that shadow gPTEs in the slot (6.12, KVM_X86_QUIRK_SLOT_ZAP_ALL off)',
    gate: (env) => needsVcpu(env) ?? (env.hasGuestPaging ? undefined : 'the configuration offers no guest paging'),
    run(ctx) {
      const paging = ctx.options.guestPaging!;
      const kvm = withSlot(ctx.vm()); // slot 1 at GPA: the guest's page tables
      kvm.host.mmap(BigInt(HVA + 2 * MB), 2n * MiB);
      kvm.setUserMemoryRegion(region(2, BigInt(GPA + 16 * MB), 2n * MiB, BigInt(HVA + 2 * MB))); // slot 2: data
      kvm.host.write(BigInt(HVA + 2 * MB), 8, 0x4242n);
      const v = kvm.createVcpu(0);
      const gva = 0x40000000;
      paging.map(kvm, v, GPA, gva, GPA + 16 * MB);
      assert.equal(seen(paging.read(kvm, v, gva)), '0x4242');
      kvm.setUserMemoryRegion(region(1, BigInt(GPA), 0n, BigInt(HVA))); // DELETE the tables' slot
      const after = paging.read(kvm, v, gva);
      assert.notEqual(seen(after), '0x4242', 'the guest still translates through page tables in a deleted slot');
      checkMmuCoherence(kvm);
      // Dropping the remaining shadow state must not touch the freed slot's accounting.
      kvm.host.exitMmap();
      checkNotifierQuiescent(kvm);
      assert.equal(kvm.arch.mmu?.mappings ?? 0, 0);
    },
  }),
];
