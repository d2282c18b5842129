import { DeployTokenResponse } from "../../schemas/deploy-token.ts";
import { callStasisApi as callApi, StasisApiCallError as StasisApiError } from "../../builder/index.ts";

export interface CredentialOptions {
  apiUrl: string;
  /** From the api-key input: an environment API key or a deploy token. */
  apiKey?: string;
  environment: string;
  project?: string;
  audience: string;
  /** `core.getIDToken`: the runner's OIDC token for an audience. */
  getIDToken(audience: string): Promise<string>;
  /** `core.setSecret`: masks a value in the job's logs. */
  setSecret(value: string): void;
}

export interface Credential extends DeployTokenResponse {
  via: "oidc" | "api-key";
}

/**
 * A short-lived deploy token for the target environment: from the api-key (which may mint one
 * for its own or a preview environment) or, without a key, by exchanging the job's OIDC token.
 */
export async function obtainDeployToken(o: CredentialOptions): Promise<Credential> {
  if (o.apiKey) {
    o.setSecret(o.apiKey);
    const minted = await callApi<unknown>(o.apiUrl, o.apiKey, "POST", "/api/v1/auth/deploy-tokens", { environment: o.environment }).catch((error) => {
      throw explain(error, "api-key");
    });
    return finish(minted, "api-key", o.setSecret);
  }
  let idToken: string;
  try {
    idToken = await o.getIDToken(o.audience);
  } catch (error) {
    throw new Error(
      `no api-key was given and the job's OIDC token is not available (${(error as Error).message}): ` +
        "add `permissions: id-token: write` to the job, or pass a deploy key as `api-key: ${{ secrets.STASIS_API_KEY }}`",
    );
  }
  const minted = await callApi<unknown>(o.apiUrl, null, "POST", "/api/v1/auth/oidc/exchange", { token: idToken, environment: o.environment, project: o.project }).catch((error) => {
    throw explain(error, "oidc");
  });
  return finish(minted, "oidc", o.setSecret);
}

function finish(body: unknown, via: Credential["via"], setSecret: (value: string) => void): Credential {
  const parsed = DeployTokenResponse.safeParse(body);
  if (!parsed.success) throw new Error(`the Stasis server answered the token request with an unexpected body: is api-url a Stasis server?`);
  setSecret(parsed.data.token);
  return { ...parsed.data, via };
}

/** What to do about an OIDC refusal, by the server's error code. */
const OIDC_HINTS: Record<string, string> = {
  OIDC_WRONG_REPOSITORY: "link the project to this repository: stasis projects link-repo <project> <owner/name>",
  OIDC_WRONG_AUDIENCE: "set the action's oidc-audience input to the server's STASIS_OIDC_AUDIENCE",
  OIDC_WRONG_ISSUER: "the server trusts another OIDC issuer (STASIS_OIDC_ISSUER): is this a GitHub Actions job of the right GitHub instance?",
  OIDC_EXPIRED: "the job's OIDC token expired before it reached the server: re-run the job",
  OIDC_BAD_SIGNATURE: "the token was not signed by the issuer the server trusts: check STASIS_OIDC_ISSUER / the JWKS URL on the server",
};

function explain(error: unknown, via: Credential["via"]): Error {
  if (!(error instanceof StasisApiError)) return error instanceof Error ? error : new Error(String(error));
  if (error.status === 404 && error.code !== "NOT_FOUND") return new Error(`the Stasis server at this api-url has no deploy-token API (HTTP 404): upgrade the server`);
  const hint =
    via === "oidc"
      ? OIDC_HINTS[error.code] ?? (error.status === 401 && !error.code.startsWith("OIDC_") ? "check that the project is linked to this repository and that oidc-audience matches the server's STASIS_OIDC_AUDIENCE" : "")
      : error.status === 401
        ? "check the api-key secret: it must be an environment API key of the project"
        : "";
  return new Error(hint ? `${error.message} (${hint})` : error.message);
}
