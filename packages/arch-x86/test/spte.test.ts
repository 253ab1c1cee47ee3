/** The EPT SPTE format of Linux 6.18 (arch/x86/kvm/mmu/spte.h, spte.c, asm/vmx.h). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EPT_SPTE_HOST_WRITABLE_BIT,
  EPT_SPTE_HOST_WRITABLE_HI,
  EPT_SPTE_MMU_WRITABLE_BIT,
  EPT_SPTE_MMU_WRITABLE_HI,
  FROZEN_SPTE_HI,
  FROZEN_SPTE_LO,
  MMIO_SPTE_GEN_HIGH_MASK_HI,
  MMIO_SPTE_GEN_LOW_MASK_LO,
  MMIO_SPTE_GEN_MASK,
  PT_PAGE_SIZE_MASK,
  SHADOW_NONPRESENT_VALUE_HI,
  SHADOW_NONPRESENT_VALUE_LO,
  SPTE_MMU_PRESENT_MASK,
  VMX_EPT_ACCESS_BIT,
  VMX_EPT_DIRTY_BIT,
  VMX_EPT_EXECUTABLE_MASK,
  VMX_EPT_MISCONFIG_WX_VALUE,
  VMX_EPT_READABLE_MASK,
  VMX_EPT_SUPPRESS_VE_BIT_HI,
  VMX_EPT_WRITABLE_MASK,
  bigIntToSpte,
  getMmioSpteGeneration,
  isAccessed,
  isDirty,
  isFrozenSpte,
  isHostWritable,
  isLargePte,
  isLastSpte,
  isMmioSpte,
  isMmuWritable,
  isShadowPresent,
  isWritable,
  makeLeafSpte,
  makeMmioSpte,
  makeNonLeafSpte,
  mmioSpteGfn,
  spteToBigInt,
  spteToPfn,
} from '../src/mmu/spte.js';

const bit = (n: number): bigint => 1n << BigInt(n);
const big = ([lo, hi]: [number, number]): bigint => spteToBigInt(lo, hi);
const genmask = (h: number, l: number): bigint => ((1n << BigInt(h - l + 1)) - 1n) << BigInt(l);

describe('SPTE bit positions (6.18 EPT with A/D bits)', () => {
  it('low bits match asm/vmx.h and spte.h', () => {
    expect(VMX_EPT_READABLE_MASK).toBe(1 << 0);
    expect(VMX_EPT_WRITABLE_MASK).toBe(1 << 1);
    expect(VMX_EPT_EXECUTABLE_MASK).toBe(1 << 2);
    expect(PT_PAGE_SIZE_MASK).toBe(1 << 7);
    expect(VMX_EPT_ACCESS_BIT).toBe(1 << 8);
    expect(VMX_EPT_DIRTY_BIT).toBe(1 << 9);
    expect(SPTE_MMU_PRESENT_MASK).toBe(1 << 11);
    expect(VMX_EPT_MISCONFIG_WX_VALUE).toBe(VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK);
  });

  it('high bits: Host-/MMU-writable 57/58, suppress-#VE and SHADOW_NONPRESENT_VALUE 63, FROZEN_SPTE', () => {
    expect(EPT_SPTE_HOST_WRITABLE_BIT).toBe(57);
    expect(EPT_SPTE_MMU_WRITABLE_BIT).toBe(58);
    expect(spteToBigInt(0, EPT_SPTE_HOST_WRITABLE_HI)).toBe(bit(57));
    expect(spteToBigInt(0, EPT_SPTE_MMU_WRITABLE_HI)).toBe(bit(58));
    expect(spteToBigInt(0, VMX_EPT_SUPPRESS_VE_BIT_HI)).toBe(bit(63));
    expect(spteToBigInt(SHADOW_NONPRESENT_VALUE_LO, SHADOW_NONPRESENT_VALUE_HI)).toBe(bit(63));
    expect(spteToBigInt(FROZEN_SPTE_LO, FROZEN_SPTE_HI)).toBe(bit(63) | 0x5a0n);
    expect(isShadowPresent(FROZEN_SPTE_LO, FROZEN_SPTE_HI)).toBe(false);
    expect(isMmioSpte(FROZEN_SPTE_LO, FROZEN_SPTE_HI)).toBe(false);
    expect(isFrozenSpte(FROZEN_SPTE_LO, FROZEN_SPTE_HI)).toBe(true);
  });

  it('MMIO generation: 19 bits, SPTE bits 3-10 and 52-62, disjoint from MMU-present', () => {
    expect(MMIO_SPTE_GEN_MASK).toBe(2 ** 19 - 1);
    expect(BigInt(MMIO_SPTE_GEN_LOW_MASK_LO)).toBe(genmask(10, 3));
    expect(spteToBigInt(0, MMIO_SPTE_GEN_HIGH_MASK_HI)).toBe(genmask(62, 52));
    expect(MMIO_SPTE_GEN_LOW_MASK_LO & SPTE_MMU_PRESENT_MASK).toBe(0);
  });
});

describe('leaf and non-leaf SPTEs', () => {
  it('a writable 4K leaf has exactly the bits make_spte() sets for a default VM', () => {
    const s = big(makeLeafSpte(0x12345, 1, { writable: true, hostWritable: true, accessed: true, dirty: true }));
    // R|W|X, memtype WB (6<<3) | IPAT, A, D, MMU-present, pfn, Host-W, MMU-W, suppress-#VE
    expect(s).toBe(0x7n | 0x30n | 0x40n | bit(8) | bit(9) | bit(11) | (0x12345n << 12n) | bit(57) | bit(58) | bit(63));
    expect(s.toString(16)).toBe('8600000012345b77');
  });

  it('huge leaves have bit 7; host-read-only leaves have no W, MMU-W or Host-W', () => {
    const [lo, hi] = makeLeafSpte(0x40000, 3, { writable: true, hostWritable: false, accessed: true, dirty: false });
    expect(isLargePte(lo, hi)).toBe(true);
    expect(isLastSpte(lo, hi, 3)).toBe(true);
    expect(isWritable(lo, hi) || isMmuWritable(lo, hi) || isHostWritable(lo, hi)).toBe(false);
    const [lo2, hi2] = makeLeafSpte(0x40000, 2, { writable: false, hostWritable: true, accessed: false, dirty: false });
    expect([isWritable(lo2, hi2), isMmuWritable(lo2, hi2), isHostWritable(lo2, hi2), isAccessed(lo2, hi2)]).toEqual([false, false, true, false]);
    const [lo3, hi3] = makeLeafSpte(7, 2, { writable: true, hostWritable: true, accessed: true, dirty: true, executable: false, ignoreGuestPat: false });
    expect(big([lo3, hi3]) & 0x7fn).toBe(0x3n | 0x30n);
  });

  it('non-leaf SPTEs: present, RWX, A, no page size, child address in bits 12-51', () => {
    const [lo, hi] = makeNonLeafSpte(5);
    expect(spteToBigInt(lo, hi)).toBe(bit(63) | (5n << 12n) | bit(11) | bit(8) | 0x7n);
    expect(isLastSpte(lo, hi, 2)).toBe(false);
    expect(isLastSpte(lo, hi, 1)).toBe(true); // is_last_spte() is true at 4K whatever the SPTE
    expect(spteToPfn(lo, hi)).toBe(5);
  });

  it('leaf round trip: pfn, level and flags survive for any pfn < 2^40', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 22 - 1 }),
        fc.integer({ min: 0, max: 2 ** 18 - 1 }),
        fc.constantFrom(1, 2, 3),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (hiPart, loPart, level, writable, hostWritable, accessed, dirty) => {
          const pages = 2 ** ((level - 1) * 9);
          const pfn = Math.floor((hiPart * 2 ** 18 + loPart) / pages) * pages;
          const [lo, hi] = makeLeafSpte(pfn, level, { writable, hostWritable, accessed, dirty });
          expect(spteToPfn(lo, hi)).toBe(pfn);
          expect(isShadowPresent(lo, hi)).toBe(true);
          expect(isMmioSpte(lo, hi)).toBe(false);
          expect(isLastSpte(lo, hi, level)).toBe(true);
          expect(isLargePte(lo, hi)).toBe(level > 1);
          expect(isWritable(lo, hi)).toBe(writable && hostWritable);
          expect(isMmuWritable(lo, hi)).toBe(writable && hostWritable);
          expect(isHostWritable(lo, hi)).toBe(hostWritable);
          expect(isAccessed(lo, hi)).toBe(accessed);
          expect(isDirty(lo, hi)).toBe(dirty);
          expect(bigIntToSpte(spteToBigInt(lo, hi))).toEqual([lo, hi]);
          expect((spteToBigInt(lo, hi) >> 12n) & ((1n << 40n) - 1n)).toBe(BigInt(pfn));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('MMIO SPTEs', () => {
  it('are EPT-misconfig (W|X without R), not present, without suppress-#VE, and carry the gfn', () => {
    const [lo, hi] = makeMmioSpte(0xfee00, 0);
    expect(spteToBigInt(lo, hi)).toBe((0xfee00n << 12n) | 0x6n);
    expect(isMmioSpte(lo, hi)).toBe(true);
    expect(isShadowPresent(lo, hi)).toBe(false);
    expect(mmioSpteGfn(lo, hi)).toBe(0xfee00);
    const [l2, h2] = makeMmioSpte(2 ** 40 - 1, MMIO_SPTE_GEN_MASK);
    expect(mmioSpteGfn(l2, h2)).toBe(2 ** 40 - 1);
    expect(getMmioSpteGeneration(l2, h2)).toBe(MMIO_SPTE_GEN_MASK);
    expect(isMmioSpte(SHADOW_NONPRESENT_VALUE_LO, SHADOW_NONPRESENT_VALUE_HI)).toBe(false);
    const [nl, nh] = makeNonLeafSpte(1);
    expect(isMmioSpte(nl, nh)).toBe(false);
  });

  it('every generation bit lands where spte.h says: gen 0-7 → SPTE 3-10, gen 8-18 → SPTE 52-62', () => {
    for (let g = 0; g < 19; g++) {
      const s = big(makeMmioSpte(0, 2 ** g));
      const expected = g < 8 ? bit(3 + g) : bit(52 + g - 8);
      expect(s & ~0x6n).toBe(expected);
      expect(getMmioSpteGeneration(...bigIntToSpte(s))).toBe(2 ** g);
    }
  });

  it('generation round trip for random generations and gfns; wider generations are masked', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MMIO_SPTE_GEN_MASK }), fc.integer({ min: 0, max: 2 ** 40 - 1 }), (gen, gfn) => {
        const [lo, hi] = makeMmioSpte(gfn, gen);
        expect(getMmioSpteGeneration(lo, hi)).toBe(gen);
        expect(mmioSpteGfn(lo, hi)).toBe(gfn);
        expect(isMmioSpte(lo, hi)).toBe(true);
        expect(isShadowPresent(lo, hi)).toBe(false);
        const [lo2, hi2] = makeMmioSpte(gfn, gen + 2 ** 19 * 3);
        expect(getMmioSpteGeneration(lo2, hi2)).toBe(gen);
      }),
      { numRuns: 500 },
    );
  });
});
