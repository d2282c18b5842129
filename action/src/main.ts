import { resolve } from "node:path";
import * as core from "@actions/core";
import { callStasisApi as callApi } from "../../builder/index.ts";
import { obtainDeployToken } from "./credentials.ts";
import { planFromEvent, readEventPayload } from "./environment.ts";
import { readInputs } from "./inputs.ts";
import { archiveSummary, deploySummary, failureSummary, skipSummary } from "./summary.ts";
import { resolveToolchainRoot, useToolchain } from "./toolchain.ts";

/** The action: deploy the project (push, pull_request) or archive a closed pull request's preview. */
export async function run(): Promise<void> {
  let environment: string | undefined;
  try {
    const inputs = readInputs((name) => core.getInput(name));
    if (inputs.registryAuth) core.setSecret(inputs.registryAuth.password);
    const eventName = process.env.GITHUB_EVENT_NAME ?? "";
    const plan = planFromEvent({ eventName, payload: readEventPayload(process.env.GITHUB_EVENT_PATH), environment: inputs.environment });

    if (plan.kind === "skip") {
      core.notice(plan.reason);
      await core.summary.addRaw(skipSummary(plan.reason)).write();
      return;
    }

    environment = plan.environment;
    const credential = await obtainDeployToken({
      apiUrl: inputs.apiUrl,
      apiKey: inputs.apiKey,
      environment: plan.environment,
      project: inputs.project,
      audience: inputs.oidcAudience,
      getIDToken: (audience) => core.getIDToken(audience),
      setSecret: (value) => core.setSecret(value),
    });
    core.info(`authenticated for ${credential.project}/${credential.environment} (${credential.via === "oidc" ? "GitHub OIDC" : "api-key"}; token valid until ${credential.expiresAt})`);
    environment = credential.environment;

    if (plan.kind === "archive") {
      core.setOutput("environment", credential.environment);
      if (!credential.archived) await callApi<unknown>(inputs.apiUrl, credential.token, "POST", "/api/v1/environments/current/archive", {});
      core.info(credential.archived ? `${credential.environment} was already archived` : `archived ${credential.environment}`);
      await core.summary.addRaw(archiveSummary(credential.project, credential.environment, credential.archived)).write();
      return;
    }
    if (credential.archived) throw new Error(`${credential.environment} of ${credential.project} is archived (its pull request was closed): reopen a pull request or deploy to another environment`);

    const projectDir = resolve(process.env.GITHUB_WORKSPACE ?? process.cwd(), inputs.workingDirectory);
    useToolchain(resolveToolchainRoot(projectDir));
    // Loaded only now: the deploy step pulls in esbuild from the toolchain root.
    const { deployStep } = await import("./deploy-step.ts");
    const deployment = await core.group(`Build and deploy ${projectDir} to ${credential.environment}`, () =>
      deployStep({
        projectDir,
        apiUrl: inputs.apiUrl,
        deployToken: credential.token,
        registry: inputs.registry,
        registryAuth: inputs.registryAuth,
        promote: inputs.promote,
        commit: plan.commit,
        runtimeImage: inputs.runtimeImage,
        onProgress: (message) => core.info(message),
      }),
    );

    core.setOutput("version", deployment.version);
    core.setOutput("environment", deployment.environment);
    core.setOutput("image", deployment.imageRef ?? "");
    core.setOutput("deployment-id", deployment.id);
    core.setOutput("tasks", JSON.stringify(deployment.tasks));
    core.info(`deployed ${deployment.version} to ${deployment.environment}${deployment.promoted ? " (promoted)" : ""}: ${deployment.tasks.length} task(s)`);
    await core.summary.addRaw(deploySummary(deployment)).write();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    core.setFailed(`Stasis deploy failed: ${message}`);
    await core.summary
      .addRaw(failureSummary(message, environment))
      .write()
      .catch(() => {}); // no summary file outside GitHub: the failure is reported above
  }
}
