// The Kubernetes manifests parse, and keep what CRIU and a shared checkpoint store need.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const dir = join(import.meta.dirname, "../deploy/kubernetes");
const docs = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => ({ file: f, doc: d.toJSON() as any, errors: d.errors })));

it("has valid YAML documents, each a Kubernetes object", () => {
  for (const { file, doc, errors } of docs) {
    expect(errors, file).toEqual([]);
    expect(doc.apiVersion, file).toBeTruthy();
    expect(doc.kind, file).toBeTruthy();
  }
});

it("runs the runner privileged with the host PID namespace, checkpoints in the registry and no shared volume", () => {
  const runner = docs.find((d) => d.doc.kind === "DaemonSet")!.doc;
  const container = runner.spec.template.spec.containers[0];
  expect(runner.spec.template.spec.hostPID).toBe(true);
  expect(container.securityContext.privileged).toBe(true);
  expect(container.command).toEqual(expect.arrayContaining(["--checkpoint-store=registry", expect.stringMatching(/^--checkpoint-repository=registry\.stasis\.svc\.cluster\.local:5000\//)]));
  expect(container.command.some((arg: string) => arg.startsWith("--checkpoint-dir"))).toBe(false);
  expect(docs.filter((d) => d.doc.kind === "PersistentVolumeClaim").map((d) => d.doc.spec.accessModes)).not.toContainEqual(expect.arrayContaining(["ReadWriteMany"]));
  const registry = docs.find((d) => d.doc.kind === "Deployment" && d.doc.metadata.name === "registry")!.doc;
  expect(registry.spec.template.spec.containers[0].env).toContainEqual({ name: "REGISTRY_STORAGE_DELETE_ENABLED", value: "true" });
});

it("gives a runner's drain time before the kill, probes on endpoints the runner serves, and a disruption budget", () => {
  const runner = docs.find((d) => d.doc.kind === "DaemonSet")!.doc;
  const pod = runner.spec.template.spec;
  const container = pod.containers[0];
  const drainGraceMs = Number(container.command.find((a: string) => a.startsWith("--drain-grace=")).split("=")[1]);
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainGraceMs + 15_000);
  const healthPort = Number(container.command.find((a: string) => a.startsWith("--health-port=")).split("=")[1]);
  expect(container.ports).toContainEqual({ name: "health", containerPort: healthPort });
  expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" });
  expect(container.livenessProbe.httpGet).toEqual({ path: "/livez", port: "health" });
  expect(container.lifecycle.preStop.httpGet).toEqual({ path: "/drain", port: "health" });
  const budgets = docs.filter((d) => d.doc.kind === "PodDisruptionBudget").map((d) => d.doc);
  expect(budgets.find((b) => b.spec.selector.matchLabels.app === "stasis-runner")?.spec.maxUnavailable).toBe(1);
  expect(budgets.find((b) => b.spec.selector.matchLabels.app === "stasis-server")?.spec.minAvailable).toBe(1);
  const server = docs.find((d) => d.doc.kind === "Deployment" && d.doc.metadata.name === "stasis-server")!.doc.spec.template.spec.containers[0];
  expect(server.livenessProbe.httpGet.path).toBe("/livez");
  expect(server.readinessProbe.httpGet.path).toBe("/healthz");
});
