import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import { StasisError } from "../errors.ts";
import type { OidcConfig } from "./config.ts";

/** The claims of a GitHub Actions OIDC token that Stasis reads. */
export interface CiClaims extends JWTPayload {
  repository: string;
  event_name?: string;
  ref?: string;
  workflow_ref?: string;
}

export type OidcVerifier = (token: string) => Promise<CiClaims>;

/**
 * Verifies signature (against the issuer's JWKS, fetched and cached by jose), `iss`, `aud` and
 * expiry. Each refusal is a 401 that says which check failed.
 */
export function createOidcVerifier(config: OidcConfig): OidcVerifier {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl));
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, { issuer: config.issuer, audience: config.audience, algorithms: ["RS256", "ES256", "PS256", "EdDSA"] }));
    } catch (error) {
      throw refusal(error, config);
    }
    if (typeof payload.repository !== "string" || payload.repository === "") throw refused("NO_REPOSITORY", "it has no repository claim (is it a GitHub Actions token?)");
    return payload as CiClaims;
  };
}

const refused = (code: string, message: string) => new StasisError(`OIDC_${code}`, 401, `OIDC token refused: ${message}`);

function refusal(error: unknown, config: OidcConfig): StasisError {
  if (error instanceof errors.JWTExpired) return refused("EXPIRED", `expired (exp ${new Date(Number(error.payload.exp) * 1000).toISOString()}); request a fresh one`);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "aud") return refused("WRONG_AUDIENCE", `wrong audience ${JSON.stringify(error.payload.aud)}; this server accepts "${config.audience}" (the action's oidc-audience input)`);
    if (error.claim === "iss") return refused("WRONG_ISSUER", `wrong issuer ${JSON.stringify(error.payload.iss)}; this server trusts ${config.issuer}`);
    return refused("INVALID_CLAIM", `claim ${error.claim} ${error.reason === "check_failed" ? "is invalid" : error.reason}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return refused("BAD_SIGNATURE", "bad signature (it was not signed by the trusted issuer's key)");
  if (error instanceof errors.JWKSNoMatchingKey) return refused("BAD_SIGNATURE", `bad signature (no key in ${config.jwksUrl} matches the token's key id)`);
  if (error instanceof errors.JOSEAlgNotAllowed) return refused("BAD_SIGNATURE", "bad signature (signing algorithm not allowed)");
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return refused("INVALID", `not a valid JWT (${error.message})`);
  }
  // The issuer's keys could not be fetched: our side, not the caller's.
  return new StasisError("OIDC_JWKS_UNAVAILABLE", 503, `the OIDC issuer's keys at ${config.jwksUrl} could not be fetched`, { cause: error });
}
