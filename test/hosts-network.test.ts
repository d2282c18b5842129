// The test network the "hosts" of e2e-hosts-registry share (test/support/hosts.ts): a host that
// leaves must not cut the others off the gateway. Needs root (a bridge, network namespaces).
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createTestNetwork, type TestNetwork } from "./support/hosts.ts";

const run = promisify(execFile);
const ip = (...args: string[]) => run("ip", args);

let network: TestNetwork | undefined;
let server: Server | undefined;
const namespaces: string[] = [];

afterEach(async () => {
  server?.close();
  for (const ns of namespaces.splice(0)) await ip("netns", "del", ns).catch(() => {});
  await network?.remove();
});

const bridgeMac = async (bridge: string) => (await readFile(`/sys/class/net/${bridge}/address`, "utf8")).trim();

/** A host: a network namespace on the bridge with address n; `mac` is the bridge side of its veth. */
async function addHost(net: TestNetwork, n: number, mac: string): Promise<{ ns: string; outside: string }> {
  const ns = `stzx${n}${net.bridge.slice(5)}`;
  const outside = `stzxh${n}${net.bridge.slice(5)}`;
  const inside = `stzxn${n}${net.bridge.slice(5)}`;
  await ip("netns", "add", ns);
  namespaces.push(ns);
  await ip("link", "add", outside, "address", mac, "type", "veth", "peer", "name", inside);
  await ip("link", "set", outside, "master", net.bridge, "up");
  await ip("link", "set", inside, "netns", ns);
  const inNs = (...args: string[]) => ip("-n", ns, ...args);
  await inNs("link", "set", "lo", "up");
  await inNs("addr", "add", `${net.hostAddress(n)}/24`, "dev", inside);
  await inNs("link", "set", inside, "up");
  await inNs("route", "add", "default", "via", net.gateway);
  return { ns, outside };
}

/** Whether a TCP connection from inside `ns` to the gateway's port is accepted within 3 s. */
async function reaches(ns: string, address: string, port: number): Promise<boolean> {
  const script = `const s = require("node:net").connect(${port}, "${address}", () => process.exit(0)); s.on("error", () => process.exit(1)); setTimeout(() => process.exit(2), 3000);`;
  return run("ip", ["netns", "exec", ns, process.execPath, "-e", script]).then(
    () => true,
    () => false,
  );
}

describe("the hosts' test network", () => {
  it("keeps its gateway's MAC when a host leaves, so the hosts still there reach the server at once", async () => {
    network = await createTestNetwork();
    const mac = await bridgeMac(network.bridge);
    server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server!.listen(0, network!.gateway, resolve));
    const port = (server.address() as { port: number }).port;
    // Host 1's veth has the lowest MAC there is: a bridge left to pick its own MAC would take it.
    const first = await addHost(network, 1, "00:00:00:00:00:01");
    const second = await addHost(network, 2, "02:ff:ff:ff:ff:fe");
    expect(await bridgeMac(network.bridge)).toBe(mac);
    // Host 2 learns the gateway's MAC (its ARP cache keeps it for 15–45 s).
    expect(await reaches(second.ns, network.gateway, port)).toBe(true);
    // Host 1 leaves; its veth goes with it.
    await ip("link", "del", first.outside);
    expect(await bridgeMac(network.bridge)).toBe(mac);
    // Host 2 still reaches the gateway: no 20–50 s wait for its cached MAC to go stale.
    expect(await reaches(second.ns, network.gateway, port)).toBe(true);
  }, 60_000);
});
