import { defineProject } from 'vitest/config';

// Sibling packages resolve to their TypeScript sources through the '@kvmsim/source'
// export condition, so tests never need a build.
export default defineProject({
  resolve: { conditions: ['@kvmsim/source'] },
  ssr: { resolve: { conditions: ['@kvmsim/source'] } },
  // Generous timeout: property tests run long on 2 cores; no test asserts on time.
  test: { name: '@kvmsim/x86', include: ['test/**/*.test.ts', 'src/**/*.test.ts'], testTimeout: 120_000 },
});
