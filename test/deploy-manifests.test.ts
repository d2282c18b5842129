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

it("runs the runner privileged with the host PID namespace and a shared checkpoint volume", () => {
  const runner = docs.find((d) => d.doc.kind === "DaemonSet")!.doc;
  const container = runner.spec.template.spec.containers[0];
  expect(runner.spec.template.spec.hostPID).toBe(true);
  expect(container.securityContext.privileged).toBe(true);
  expect(container.command).toContain("--checkpoint-dir=/checkpoints");
  const claim = docs.find((d) => d.doc.kind === "PersistentVolumeClaim" && d.doc.metadata.name === "stasis-checkpoints")!.doc;
  expect(claim.spec.accessModes).toContain("ReadWriteMany");
});
