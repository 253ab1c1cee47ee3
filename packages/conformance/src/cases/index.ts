/** Every case of the suite, by group, in the order the runner and the zoo try them (cheap first). */
import type { CaseGroupId, ConformanceCase } from '../types.js';
import { agingCases } from './aging.js';
import { dirtyLogCases } from './dirty-log.js';
import { guestVisibleCases } from './guest-visible.js';
import { hookOrderCases } from './hook-order.js';
import { interleavingCases } from './interleavings.js';
import { lookupCases } from './lookups.js';
import { memslotAbiCases } from './memslot-abi.js';
import { modelBasedCases } from './model-based.js';
import { notifierCases } from './notifier.js';

/** Group id → its title and cases. */
export const CASE_GROUPS: Readonly<Record<CaseGroupId, { readonly title: string; readonly cases: readonly ConformanceCase[] }>> = Object.freeze({
  'memslot-abi': { title: 'memslot ABI and change kinds', cases: memslotAbiCases },
  'hook-order': { title: 'hook call order and generations', cases: hookOrderCases },
  lookups: { title: 'lookups and caches', cases: lookupCases },
  'dirty-log': { title: 'dirty log', cases: dirtyLogCases },
  notifier: { title: 'notifier invalidation', cases: notifierCases },
  aging: { title: 'aging', cases: agingCases },
  'guest-visible': { title: 'guest-visible semantics through the vCPU', cases: guestVisibleCases },
  interleavings: { title: 'interleavings (explore)', cases: interleavingCases },
  'model-based': { title: 'model-based random test', cases: modelBasedCases },
});

export const ALL_CASES: readonly ConformanceCase[] = Object.values(CASE_GROUPS).flatMap((g) => g.cases);

export { agingVsFastZap } from './interleavings.js';
