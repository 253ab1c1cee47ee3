/** runReplayConformanceSuite(): the replay groups registered into vitest, one test per case. */
import { describe, it } from 'vitest';
import { replayCases, runReplayCase, type ReplayConformanceOptions } from './replay-suite.js';

export function runReplayConformanceSuite(options: ReplayConformanceOptions): void {
  (options.skip === undefined ? describe : describe.skip)(`replay conformance: ${options.name}${options.skip ? ` (${options.skip})` : ''}`, () => {
    for (const group of options.groups ?? (['abi', 'guest-visible'] as const)) {
      describe(group, () => {
        for (const c of replayCases([group])) {
          const known = options.knownDivergences?.some((d) => d.test === c.id);
          (known ? it.fails : it)(`${c.title} [${c.id}]`, () => runReplayCase(c, options.createTarget));
        }
      });
    }
  });
}
