interface ImportMetaEnv {
  readonly VITE_ISSUER?: string;
  readonly VITE_API?: string;
  readonly VITE_RESOURCE?: string;
}
interface ImportMeta {
  readonly env: ImportMetaEnv;
}
