/**
 * Every fault-injection switch of kvm-core re-introduces a bug that a specific check catches.
 * (The conformance zoo will run these across backends; here each switch is pinned to its check.)
 */
import { describe, expect, it } from 'vitest';
import type { CoreFaults, StoreFaults } from '../src/index.js';
import { checkMemslotInvariants as checkInvariants } from '../src/testing/index.js';
import { MiB, errnoOf, mkVm, region, set } from './support/vm.js';

function vm(faults: CoreFaults = {}, storeFaults: StoreFaults = {}, store: 'scalable' | 'legacy' = 'scalable') {
  return mkVm(store, {}, { faults, storeFaults });
}

describe('fault-injection switches are each caught', () => {
  it('overlapCheckCountsOwnSlot: a MOVE overlapping its own old range fails (M21)', () => {
    const ok = vm();
    const bad = vm({ overlapCheckCountsOwnSlot: true });
    for (const { kvm } of [ok, bad]) set(kvm, region(10, 0xd0000000n, 2n * MiB));
    expect(set(ok.kvm, region(10, 0xd0001000n, 2n * MiB))).toBe(0);
    expect(set(bad.kvm, region(10, 0xd0001000n, 2n * MiB))).toBe('EEXIST');
  });

  it('deleteWithoutInvalidStep: the slot is still visible while the arch flushes it', () => {
    for (const [faults, visible] of [[{}, false], [{ deleteWithoutInvalidStep: true }, true]] as const) {
      const { kvm, arch } = vm(faults);
      set(kvm, region(3, 0n, 2n * MiB));
      let seen: boolean | undefined;
      const orig = arch.flushShadowMemslot.bind(arch);
      arch.flushShadowMemslot = (slot) => {
        // what a racing vCPU fault would find during the flush
        seen = kvm.kvmMemslots(0).searchMemslots(0, false)?.flags === 0;
        orig(slot);
      };
      set(kvm, region(3, 0n, 0n));
      expect(seen).toBe(visible);
    }
  });

  it('dirtyBitmapNotResetOnReenable: stale bits survive logging off/on (D36a)', () => {
    for (const [faults, expected] of [[{}, 0], [{ dirtyBitmapNotResetOnReenable: true }, 1]] as const) {
      const { kvm } = vm(faults);
      set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1));
      kvm.gfnToMemslot(0)!.dirtyBitmap![0] = 1; // a guest write to page 0
      set(kvm, region(3, 0n, 2n * MiB));
      set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1));
      expect(kvm.getDirtyLog(3)[0]).toBe(expected);
    }
  });

  it('clearDirtyLogSkipsAlignmentCheck: first_page 1 is accepted (D18)', () => {
    for (const [faults, expected] of [[{}, 'EINVAL'], [{ clearDirtyLogSkipsAlignmentCheck: true }, 0]] as const) {
      const { kvm } = vm(faults);
      set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1));
      expect(errnoOf(() => kvm.clearDirtyLog(3, 1n, 64, new Uint8Array(8)))).toBe(expected);
    }
  });

  it('memslotsUpdatedAfterInstall: the arch sees the final generation already installed', () => {
    for (const [faults, inProgress] of [[{}, true], [{ memslotsUpdatedAfterInstall: true }, false]] as const) {
      const { kvm, arch } = vm(faults);
      let seen: number | undefined;
      arch.memslotsUpdated = () => void (seen = kvm.kvmMemslots(0).generation);
      set(kvm, region(3, 0n, 2n * MiB));
      expect(seen! >= 2 ** 52).toBe(inProgress);
    }
  });

  it('legacyMoveSkipsIdToIndex: id_to_index goes stale after a MOVE past other slots', () => {
    const { kvm } = vm({}, { legacyMoveSkipsIdToIndex: true }, 'legacy');
    set(kvm, region(1, 0n, 2n * MiB));
    set(kvm, region(2, 4n * MiB, 2n * MiB));
    set(kvm, region(1, 8n * MiB, 2n * MiB)); // moves past slot 2 in the sorted array
    expect(() => checkInvariants(kvm)).toThrow(/id_to_index/);
    const good = vm({}, {}, 'legacy');
    set(good.kvm, region(1, 0n, 2n * MiB));
    set(good.kvm, region(2, 4n * MiB, 2n * MiB));
    set(good.kvm, region(1, 8n * MiB, 2n * MiB));
    expect(() => checkInvariants(good.kvm)).not.toThrow();
  });
});
