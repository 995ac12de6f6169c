import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'dpop-verifier', include: ['test/**/*.test.ts'], testTimeout: 30_000 },
});
