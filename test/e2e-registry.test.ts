// A version pushed to a real OCI registry (Debian's docker-registry on 127.0.0.1) is pulled by the
// runner by digest and run; its tag is never overwritten.
import { afterAll, beforeAll, expect, it } from "vitest";
import { openImageRepository } from "../builder/index.ts";
import type { TriggerResponse } from "../schemas/index.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let registry: TestRegistry;

beforeAll(async () => {
  registry = await startRegistry();
  // The server and the runner accept images only from configured registries.
  process.env.STASIS_ALLOWED_REGISTRIES = `${registry.host},oci-layout:*`;
  stack = await startTestStack({ project: "hello", runners: 1 });
});

afterAll(async () => {
  delete process.env.STASIS_ALLOWED_REGISTRIES;
  await stack?.stop();
  await registry?.stop();
});

it("runs a version whose image the runner pulls from the registry", async () => {
  const store = openImageRepository(`${registry.host}/hello`);
  const deployment = await stack.deploy(`${REPO_ROOT}/examples/hello`, { store });
  expect(deployment.imageRef).toBe(`${registry.host}/hello@${deployment.imageDigest}`);

  const { id } = await stack.api<TriggerResponse>("POST", "/api/v1/tasks/hello/trigger", { payload: { name: "registry" } });
  const run = await stack.waitForRun(id, (r) => r.status === "COMPLETED", "the run of the pulled image");
  expect(run.output).toEqual({ greeting: "Hello, registry!" });
  expect(run.version).toBe(deployment.version);

  // The version's tag names its digest in the registry, and a different image cannot take it over.
  const tag = `development-${deployment.version}`;
  expect(await store.resolveTag(tag)).toBe(deployment.imageDigest);
});
