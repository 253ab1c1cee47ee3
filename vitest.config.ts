import { defineConfig } from 'vitest/config';

// One vitest run covers every package; each package's own vitest.config.ts names it.
export default defineConfig({
  test: { projects: ['packages/*'] },
});
