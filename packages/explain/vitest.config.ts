import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'explain', include: ['test/**/*.test.ts'], testTimeout: 60_000 },
});
