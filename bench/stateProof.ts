/**
 * What a device pays to check the ledger facts it acts on with storage proofs (issue 16, ADR 0010),
 * beside what it pays for the same facts as plain eth_call answers, on anvil with the project's
 * registries deployed:
 *
 *   per check: the facts of one update decision (the release's stored record, its signer's
 *     registration, its provider's bar, the device's own standing) read at one block: JSON-RPC
 *     calls, bytes on the wire (HTTP response bodies, JSON-RPC envelope included), and time (the
 *     median over BENCH_CHECKS checks, round trips to anvil on 127.0.0.1 included);
 *   verify: the device's CPU for one check alone (the header hashed, both eth_getProof answers
 *     walked), on answers already received;
 *   proof size: nodes in the account and storage proofs, which grow with the state: the chain is
 *     filled first with BENCH_ACCOUNTS funded accounts and BENCH_SLOTS more registry slots
 *     (anvil_setBalance, anvil_setStorageAt), so the tries are deeper than a fresh node's.
 *
 *   npm run bench:stateproof                                      10,000 accounts, 10,000 slots, 50 checks
 *   BENCH_ACCOUNTS=0 BENCH_SLOTS=0 npm run bench:stateproof        a fresh chain
 *   npm run bench:stateproof -- --json                            one JSON document (or BENCH_JSON=1)
 *
 * anvil listens on 127.0.0.1 and is stopped at the end, on an error and on Ctrl-C.
 */
import { FetchRequest, JsonRpcProvider, Network, hexlify, keccak256, randomBytes, toBeHex } from "ethers";
import { startAnvil } from "../scripts/lib/anvilChain";
import type { LocalChain } from "../scripts/lib/localChain";
import { freePort } from "../scripts/lib/ports";
import { registryOnNode, NODE_SIGNER } from "../scripts/lib/registryOnNode";
import { readProvenFacts, releaseSlot, providerBarredSlot, providerSignerSlot, standingSlots } from "../agent/chain/provenFacts";
import { slotKey, verifyGetProof, verifyHeader } from "../agent/chain/stateProof";
import { UpdateRegistry__factory, FleetRegistry__factory } from "../agent/chain/contracts";
import { median, round } from "./lib/measure";

const json = process.argv.includes("--json") || process.env.BENCH_JSON === "1";
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10_000);
const SLOTS = Number(process.env.BENCH_SLOTS ?? 10_000);
const CHECKS = Number(process.env.BENCH_CHECKS ?? 50);
const log = (line: string) => {
  if (!json) console.error(line);
};

/** A provider that counts its HTTP response bytes and never caches or batches: each call is one request. */
function countingProvider(url: string): { provider: JsonRpcProvider; wire: { bytes: number; calls: number } } {
  const wire = { bytes: 0, calls: 0 };
  const request = new FetchRequest(url);
  request.processFunc = async (_req, resp) => {
    wire.bytes += resp.body?.length ?? 0;
    wire.calls += 1;
    return resp;
  };
  return { provider: new JsonRpcProvider(request, Network.from(31337), { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1 }), wire };
}

async function fill(url: string, registry: string): Promise<void> {
  const rpc = async (method: string, params: unknown[]) =>
    fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  // In parallel, a few hundred at a time: the state grows as a busy chain's does, only faster.
  const run = async (n: number, one: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < n; i += 256) await Promise.all(Array.from({ length: Math.min(256, n - i) }, (_, k) => one(i + k)));
  };
  await run(ACCOUNTS, () => rpc("anvil_setBalance", [hexlify(randomBytes(20)), "0x1"]));
  await run(SLOTS, () => rpc("anvil_setStorageAt", [registry, keccak256(randomBytes(32)), toBeHex(1, 32)]));
  await rpc("evm_mine", []);
}

async function main(): Promise<void> {
  let chain: LocalChain | undefined;
  const stop = async () => {
    await chain?.stop();
    chain = undefined;
  };
  process.once("SIGINT", () => void stop().then(() => process.exit(130)));
  try {
    chain = await startAnvil({ port: await freePort() });
    const node = await registryOnNode(chain.url);
    const release = await node.publish("1.0.0");
    const device = await node.enrol("bench device");
    const at = { registry: await node.registry.getAddress(), fleet: await node.fleet.getAddress() };
    log(`filling the state: ${ACCOUNTS} accounts, ${SLOTS} registry slots ...`);
    await fill(chain.url, at.registry);
    const query = { releases: [release.id], provider: 1, signer: { provider: 1, address: NODE_SIGNER.address }, device: device.credential };

    // Proven: the header and one eth_getProof per registry.
    const proven = countingProvider(chain.url);
    const provenMs: number[] = [];
    let facts = await readProvenFacts(proven.provider, at, query); // warm-up
    proven.wire.bytes = proven.wire.calls = 0;
    for (let i = 0; i < CHECKS; i++) {
      const t0 = performance.now();
      facts = await readProvenFacts(proven.provider, at, query);
      provenMs.push(performance.now() - t0);
    }
    const provenWire = { ...proven.wire };

    // The device's CPU alone: the same answers, verified again.
    const tag = toBeHex(facts.block.number);
    const header = await proven.provider.send("eth_getBlockByNumber", [tag, false]);
    const registryKeys = [releaseSlot(release.id), providerBarredSlot(1), providerSignerSlot(1, NODE_SIGNER.address)].map(slotKey);
    const fleetKeys = Object.values(standingSlots(device.credential)).map((s) => slotKey(s!));
    const registryAnswer = await proven.provider.send("eth_getProof", [at.registry, registryKeys, tag]);
    const fleetAnswer = await proven.provider.send("eth_getProof", [at.fleet, fleetKeys, tag]);
    const verifyMs: number[] = [];
    for (let i = 0; i < Math.max(CHECKS, 200); i++) {
      const t0 = performance.now();
      const root = verifyHeader(header).stateRoot;
      verifyGetProof(root, at.registry, registryKeys, registryAnswer);
      verifyGetProof(root, at.fleet, fleetKeys, fleetAnswer);
      verifyMs.push(performance.now() - t0);
    }

    // Plain eth_call, as the device reads the same facts without proofs.
    const plain = countingProvider(chain.url);
    const registry = UpdateRegistry__factory.connect(at.registry, plain.provider);
    const fleet = FleetRegistry__factory.connect(at.fleet, plain.provider);
    const c = device.credential;
    const callOnce = () =>
      Promise.all([
        plain.provider.send("eth_getBlockByNumber", ["latest", false]),
        registry.releaseState(release.id),
        registry.releaseStatus(release.id),
        registry.isProviderSigner(1, NODE_SIGNER.address),
        registry.getFunction("provider")(1),
        fleet.deviceStanding(c.record, c.batchId, c.proof),
      ]);
    await callOnce();
    plain.wire.bytes = plain.wire.calls = 0;
    const plainMs: number[] = [];
    for (let i = 0; i < CHECKS; i++) {
      const t0 = performance.now();
      await callOnce();
      plainMs.push(performance.now() - t0);
    }

    const figures = {
      node: "anvil (Foundry 1.7.1), 127.0.0.1",
      state: { accounts: ACCOUNTS, registrySlots: SLOTS },
      checks: CHECKS,
      proofs: {
        callsPerCheck: provenWire.calls / CHECKS,
        bytesPerCheck: Math.round(provenWire.bytes / CHECKS),
        msPerCheck: round(median(provenMs), 2),
        verifyMsPerCheck: round(median(verifyMs), 3),
        accountProofNodes: { registry: registryAnswer.accountProof.length, fleet: fleetAnswer.accountProof.length },
        storageProofNodes: Math.max(...registryAnswer.storageProof.map((p: { proof: string[] }) => p.proof.length)),
      },
      ethCall: {
        callsPerCheck: plain.wire.calls / CHECKS,
        bytesPerCheck: Math.round(plain.wire.bytes / CHECKS),
        msPerCheck: round(median(plainMs), 2),
      },
    };
    node.close();
    proven.provider.destroy();
    plain.provider.destroy();
    if (json) console.log(JSON.stringify(figures, null, 2));
    else {
      const p = figures.proofs;
      const e = figures.ethCall;
      console.log(`state: ${ACCOUNTS} extra accounts, ${SLOTS} extra registry slots; ${CHECKS} checks`);
      console.log(`proven check    ${p.callsPerCheck} calls  ${p.bytesPerCheck} bytes  ${p.msPerCheck} ms  (verify alone ${p.verifyMsPerCheck} ms)`);
      console.log(
        `                account proof ${p.accountProofNodes.registry}/${p.accountProofNodes.fleet} nodes, storage proof up to ${p.storageProofNodes} nodes`,
      );
      console.log(`eth_call check  ${e.callsPerCheck} calls  ${e.bytesPerCheck} bytes  ${e.msPerCheck} ms`);
    }
  } finally {
    await stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
