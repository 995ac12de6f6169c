import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'react-native',
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
  },
});
