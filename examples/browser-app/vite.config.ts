import { defineConfig } from 'vite';

export default defineConfig({
  server: { host: '127.0.0.1', strictPort: true },
  build: { target: 'es2022' },
  logLevel: 'warn',
});
