/**
 * memslot_perf_test's constants and slot layout (kvm-generic.md §7.2), shared by the model and
 * the kernel side so both run the same VM.
 *
 * @see tools/testing/selftests/kvm/memslot_perf_test.c prepare_vm(), check_slot_pages(),
 *      test_memslot_move_prepare() (6.18)
 * Simplification: the test area is one anonymous mapping (the selftest maps each slot on its
 * own); slots still get disjoint, consecutive host ranges and madvise calls still stop at slot
 * boundaries, as vm_gpa2hva() makes them.
 */

export const PAGE_BYTES = 4096;
const KiB = 1024;
const MiB = 1024 * KiB;

/** MEM_EXTRA_SIZE: the sync area in front of the test area. */
export const MEM_EXTRA_SIZE: number = 64 * KiB;
/** MEM_GPA: where test slot 1 starts (the sync area). */
export const MEM_GPA: number = 256 * MiB;
/** MEM_TEST_GPA = MEM_GPA + MEM_EXTRA_SIZE: the first page the workloads touch. */
export const MEM_TEST_GPA: number = MEM_GPA + MEM_EXTRA_SIZE;
export const MEM_TEST_SIZE: number = 512 * MiB;
/** MEM_SIZE: the memory of the move and rw workloads (and of slot setup). */
export const MEM_SIZE: number = MEM_TEST_SIZE + MEM_EXTRA_SIZE;
export const MEM_TEST_MAP_SIZE: number = 32 * MiB;
export const MEM_SIZE_MAP: number = MEM_TEST_MAP_SIZE + MEM_EXTRA_SIZE;
export const MEM_TEST_UNMAP_SIZE: number = 128 * MiB;
export const MEM_TEST_UNMAP_CHUNK_SIZE: number = 2 * MiB;
export const MEM_TEST_MOVE_SIZE: number = 192 * KiB;
/** MEM_TEST_MOVE_GPA_DEST = MEM_GPA + MEM_SIZE: where MOVE puts the last slot. */
export const MEM_TEST_MOVE_GPA_DEST: number = MEM_GPA + MEM_SIZE;
export const VAL_1 = 0x1122334455667788n;
export const VAL_2 = 0x99aabbccddeeff00n;

/**
 * Slot 0, "the VM's own memory" (guest code and page tables in the selftest): 2 MiB right below
 * MEM_GPA, so that the move-inactive area of a single test slot (below it) is guest RAM too.
 */
export const SLOT0_BYTES: number = 2 * MiB;
export const SLOT0_GPA: number = MEM_GPA - SLOT0_BYTES;
/** Host addresses: far from anything a process maps by itself (the oracle uses fixed mappings). */
export const SLOT0_HVA = 0x100000000000;
export const TEST_HVA = 0x200000000000;

/** x86's KVM_USER_MEM_SLOTS (KVM_CAP_NR_MEMSLOTS): slot 0 plus at most 32763 test slots. */
export const MAX_MEMSLOTS = 32764;

/** The workloads of memslot_perf_test, in its order. */
export const WORKLOADS = ['map', 'unmap', 'unmap-chunked', 'move-active', 'move-inactive', 'rw'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** Memory behind the test slots, per workload (`mem_size` of the selftest's test table). */
export function workloadMemBytes(w: Workload): number {
  switch (w) {
    case 'map':
      return MEM_SIZE_MAP;
    case 'unmap':
    case 'unmap-chunked':
      return MEM_TEST_UNMAP_SIZE + MEM_EXTRA_SIZE;
    default:
      return MEM_SIZE;
  }
}

/** Test slots 1..nslots over `memBytes` from MEM_GPA, the last one taking the remainder. */
export interface SlotLayout {
  /** The slot count asked for (a column of the report). */
  readonly requested: number;
  /** Test slots actually created: `requested`, capped so that slot 0 + them ≤ MAX_MEMSLOTS. */
  readonly nslots: number;
  readonly npages: number;
  readonly pagesPerSlot: number;
  /** Pages of the last slot (pagesPerSlot + the remainder). */
  readonly lastPages: number;
}

/** Why a workload cannot run at that slot count (the selftest's "Memslot count too high"). */
export interface NotApplicable {
  readonly na: string;
}

/**
 * memslot_perf_test `-s` caps the VM's slots at KVM_CAP_NR_MEMSLOTS, slot 0 included; asking
 * for 32764 test slots therefore runs 32763 of them, exactly what the selftest's default does.
 */
export function effectiveTestSlots(requested: number): number {
  return Math.min(requested, MAX_MEMSLOTS - 1);
}

export function slotLayout(requested: number, memBytes: number): SlotLayout | NotApplicable {
  const nslots = effectiveTestSlots(requested);
  const npages = memBytes / PAGE_BYTES;
  const pagesPerSlot = Math.floor(npages / nslots);
  // check_slot_pages(): at least one page per slot (host and guest pages are both 4 KiB here).
  if (pagesPerSlot === 0) return { na: `Memslot count too high for this test (${npages} pages; max is ${npages} test slots)` };
  return { requested, nslots, npages, pagesPerSlot, lastPages: pagesPerSlot + (npages % nslots) };
}

/** The layout of a workload, or why it does not apply (also the move-active "last slot too small" rule). */
export function workloadLayout(w: Workload, requested: number): SlotLayout | NotApplicable {
  const l = slotLayout(requested, workloadMemBytes(w));
  if ('na' in l) return l;
  if (w === 'move-active' && l.lastPages * PAGE_BYTES < MEM_TEST_MOVE_SIZE / 2) {
    return { na: `the last slot (${l.lastPages} pages) is smaller than half the move area (96 KiB)` };
  }
  return l;
}

export function isNa(l: SlotLayout | NotApplicable): l is NotApplicable {
  return 'na' in l;
}

/** Test slot `id` (1-based): first page index in the test memory and page count. */
export function slotPages(l: SlotLayout, id: number): { first: number; pages: number } {
  return { first: (id - 1) * l.pagesPerSlot, pages: id === l.nslots ? l.lastPages : l.pagesPerSlot };
}

/** vm_slot2gpa(data, id - 1): guest physical address of test slot `id`. */
export function slotGpa(l: SlotLayout, id: number): number {
  return MEM_GPA + (id - 1) * l.pagesPerSlot * PAGE_BYTES;
}

/** Host address of page `page` of the test memory (page 0 is at MEM_GPA). */
export function testHva(page: number): number {
  return TEST_HVA + page * PAGE_BYTES;
}

/** The slot holding test-memory page `page` (vm_gpa2hva()'s slot choice). */
export function slotOfPage(l: SlotLayout, page: number): number {
  return Math.min(Math.floor(page / l.pagesPerSlot), l.nslots - 1) + 1;
}

/**
 * test_memslot_do_unmap() makes one madvise call per slot a range touches (vm_gpa2hva() gives
 * the pages left in the slot): the length of the piece starting at test page `page`, at most `left`.
 */
export function pieceLength(l: SlotLayout, page: number, left: number): number {
  const s = slotPages(l, slotOfPage(l, page));
  return Math.min(s.first + s.pages - page, left);
}

/** The move workloads: the 192 KiB area the guest writes and the source gpa of the moved slot. */
export function moveArea(l: SlotLayout, active: boolean): { areaGpa: number; moveSrcGpa: number; mmioMin: number; mmioMax: number } {
  const moveSrcGpa = slotGpa(l, l.nslots);
  const areaGpa = moveSrcGpa - MEM_TEST_MOVE_SIZE / (active ? 2 : 1);
  return active
    ? { areaGpa, moveSrcGpa, mmioMin: moveSrcGpa, mmioMax: moveSrcGpa + MEM_TEST_MOVE_SIZE / 2 - 1 }
    : { areaGpa, moveSrcGpa, mmioMin: 1, mmioMax: 0 };
}
