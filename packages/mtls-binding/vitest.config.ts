import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'mtls-binding', include: ['test/**/*.test.ts'], testTimeout: 30_000 },
});
