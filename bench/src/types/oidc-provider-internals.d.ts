// oidc-provider's DPoP validation is not public API; the benchmark calls it by path.
declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  export default function validateDpop(
    provider: unknown,
    ctx: unknown,
    accessToken?: string,
  ): Promise<unknown>;
}
