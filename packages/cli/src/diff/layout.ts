/**
 * The fixed address pools of `kvmsim diff`'s generator. Small pools make ops collide: slots
 * overlap, accesses land in slots, host writes land behind slots, munmap pulls pages from under
 * them. Everything here is a plain number (all values are below 2^53).
 */

export const PAGE_SIZE = 4096;

/**
 * Host mappings: {@link HOST_REGION_COUNT} regions of {@link HOST_REGION_PAGES} pages, the region
 * i at `HOST_BASE + i * HOST_REGION_STRIDE`, with an always-unmapped gap of the same size after
 * each. 0x10_0000_0000 (64 GiB) is far from the oracle's own memory, which it keeps in
 * 0x5555_5555_4000–0x5555_5570_0000 and 0x7fff_f700_0000–0x7fff_f7ff_f000 (tools/kvm-oracle/README.md,
 * "The oracle's own address space"), so a sequence's mmap never collides with it.
 */
export const HOST_BASE = 0x10_0000_0000;
export const HOST_REGION_COUNT = 6;
export const HOST_REGION_PAGES = 256;
export const HOST_REGION_STRIDE: number = 2 * HOST_REGION_PAGES * PAGE_SIZE;
/** Pages covered by the pool, gaps included (the generator's page-tracking array). */
export const HOST_POOL_PAGES: number = (HOST_REGION_COUNT * HOST_REGION_STRIDE) / PAGE_SIZE;

/**
 * Guest-physical bases of slots: multiples of 64 KiB below 16 MiB, plus a window just below
 * 4 GiB. Valid slots end at or below 2^32: the oracle puts its own code and page tables at or
 * above 2^32 (replay-protocol.md), so a sequence never competes with it for guest memory.
 */
export const GPA_GRANULE = 0x1_0000;
export const GPA_LOW_GRANULES = 256;
export const GPA_HIGH_BASE = 0xffe0_0000;
export const GPA_LIMIT = 0x1_0000_0000;

/** Slot ids the generator uses: a small pool, plus the highest valid id now and then. */
export const SLOT_IDS: readonly number[] = [0, 1, 2, 3, 4, 5];
export const SLOT_ID_MAX_VALID = 32763;
/** Slot sizes in pages: odd sizes give bitmaps with a partial last word. */
export const SLOT_PAGES: readonly number[] = [1, 2, 3, 8, 16, 37, 64, 100, 128, 256];

/** KVM_MEM_LOG_DIRTY_PAGES and KVM_MEM_READONLY. */
export const MEM_LOG_DIRTY_PAGES = 1;
export const MEM_READONLY = 2;
