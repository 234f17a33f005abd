import { expect } from "chai";
import { network } from "hardhat";
import { HardhatEthersProvider } from "@nomicfoundation/hardhat-ethers/internal/hardhat-ethers-provider";
import { serverFixture, makeDevice, writeImage } from "../../helpers/serverFixture";
import { expectCode } from "../../helpers/expectCode";
import { grantKeys, readFleetEvents, standingProblem } from "../../../agent/author/grantKeys";
import { buildDeviceBatch } from "../../../agent/crypto/deviceTree";
import type { DeviceCredential } from "../../../agent/crypto/deviceCredential";
import { DEVICE_STANDING, ledgerName } from "../../../agent/core/ledgerCodes";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/**
 * A chain client for the author alone, counting the JSON-RPC methods it sends by name (the
 * firmware server in this process asks the same node through its own client: not counted).
 */
function countingChain() {
  const calls: Record<string, number> = {};
  const counting = {
    send(method: string, params?: unknown[]) {
      calls[method] = (calls[method] ?? 0) + 1;
      return network.provider.send(method, params);
    },
    request(args: { method: string; params?: unknown[] }) {
      return this.send(args.method, args.params);
    },
  };
  return { provider: new HardhatEthersProvider(counting as unknown as typeof network.provider, "hardhat"), calls };
}

/** A batch of `n` devices of hardware class `hardwareClass`, enrolled; their credentials. */
async function enrolBatch(f: Fixture, label: string, n: number, hardwareClass = 1): Promise<{ batchId: number; credentials: DeviceCredential[] }> {
  const devices = Array.from({ length: n }, (_, i) => makeDevice(`${label}-${i}`, hardwareClass));
  const tree = buildDeviceBatch(devices.map((d) => d.credential.record));
  const receipt = await (await f.fleet.connect(f.admin).enrolDeviceBatch(tree.root, n, "ipfs://records")).wait();
  const batchId = Number(f.fleet.interface.parseLog(receipt!.logs[0])!.args.batchId);
  return { batchId, credentials: devices.map((d, i) => ({ record: d.credential.record, batchId, proof: tree.proofs[i] })) };
}

describe("agent/author grantKeys: standings without a ledger call per device (issue 17)", function () {
  this.timeout(180_000);
  let f: Fixture;
  let releaseId: string;

  before(async () => {
    f = await serverFixture();
    const image = writeImage(f.dir, "sensor.bin", 64 * 1024, 7);
    ({ releaseId } = await f.release({ component: "acme.sensor-fw", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] }));
  });
  after(async () => f?.close());

  const deps = () => ({ registry: f.registry, fleet: f.fleet, domain: f.domain, author: f.acmeAuthor, keys: f.keys, serverUrl: f.server.url });

  it("CAP-11.4-b: grants 1,000 batch-enrolled devices with two eth_calls (the release's status, the one batch), not one per device", async () => {
    const { credentials } = await enrolBatch(f, "fleet-1000", 1000);
    const chain = countingChain();
    const counted = { ...deps(), registry: f.registry.connect(chain.provider), fleet: f.fleet.connect(chain.provider) };
    const result = await grantKeys(counted, releaseId, { allEligible: true, credentials });
    const calls = chain.calls;
    expect(result.granted).to.have.length(1000 + 2); // and the two active single devices of hardware class 1
    for (const c of credentials.slice(0, 3)) expect(f.db.wrappedKey(releaseId, c.record.id)).to.not.equal(undefined);
    // Before issue 17: 1,002 eth_calls (a deviceStanding per device, and the status).
    expect(calls.eth_call, JSON.stringify(calls)).to.equal(2);
    expect(calls.eth_getLogs, JSON.stringify(calls)).to.equal(2); // the release's event, the fleet's device events
  });

  it("skips, with the reason, a forged proof, a withdrawn batch, a batch not on the ledger and a record superseded by a single enrolment", async () => {
    const good = await enrolBatch(f, "mixed-good", 4);
    const withdrawn = await enrolBatch(f, "mixed-withdrawn", 2);
    await f.fleet.connect(f.admin).revokeDeviceBatch(withdrawn.batchId, "keys leaked at the factory");
    const forged: DeviceCredential = { ...good.credentials[0], record: makeDevice("mixed-intruder", 1).credential.record }; // someone else's proof
    const unknownBatch: DeviceCredential = { ...good.credentials[1], batchId: 9999 };
    const superseded = good.credentials[2];
    await f.fleet.connect(f.admin).enrolDevice({ ...superseded.record, publicKey: makeDevice("mixed-new-key", 1).credential.record.publicKey });
    const credentials = [forged, unknownBatch, superseded, good.credentials[3], ...withdrawn.credentials];
    const result = await grantKeys(deps(), releaseId, { allEligible: true, credentials });
    const reasons = Object.fromEntries(result.skipped.map((s) => [s.deviceId, s.reason]));
    expect(reasons[forged.record.id]).to.match(/its proof does not lead to batch \d+'s root/);
    expect(reasons[unknownBatch.record.id]).to.equal("device is not enrolled with this record: batch 9999 is not on the ledger");
    expect(reasons[superseded.record.id]).to.equal("device is withdrawn: its batch record is superseded by its single enrolment");
    for (const c of withdrawn.credentials) expect(reasons[c.record.id]).to.equal(`device is withdrawn: batch ${withdrawn.batchId} was withdrawn`);
    expect(result.granted).to.include(good.credentials[3].record.id);
    expect(f.db.wrappedKey(releaseId, forged.record.id)).to.equal(undefined);
    // Named, a forged credential fails the whole grant before anything is sent.
    await expectCode(grantKeys(deps(), releaseId, { deviceIds: [forged.record.id], credentials: [forged] }), "DEVICE_NOT_ELIGIBLE");
  });

  it("decides every standing as FleetRegistry.deviceStanding does (single, withdrawn record, suspended, batch, forged, withdrawn batch, superseded)", async () => {
    const batch = await enrolBatch(f, "agree", 5);
    const withdrawnBatch = await enrolBatch(f, "agree-withdrawn", 1);
    await f.fleet.connect(f.admin).revokeDeviceBatch(withdrawnBatch.batchId, "test");
    const [b0, b1, b2, b3, b4] = batch.credentials;
    await f.fleet.connect(f.admin).revokeDeviceRecord(b1.record, b1.batchId, b1.proof, "key leaked"); // one batch record withdrawn
    await f.fleet.connect(f.admin).suspendDevice(b2.record.id, "stolen");
    await f.fleet.connect(f.admin).enrolDevice(b3.record); // superseded by its single enrolment
    const single = makeDevice("agree-single", 1);
    await f.fleet.connect(f.admin).enrolDevice(single.credential.record);
    const revokedSingle = makeDevice("agree-single-revoked", 1);
    await f.fleet.connect(f.admin).enrolDevice(revokedSingle.credential.record);
    await f.fleet.connect(f.admin).revokeDeviceRecord(revokedSingle.credential.record, 0, [], "retired");
    const cases: DeviceCredential[] = [
      b0,
      b1,
      b2,
      b3,
      { ...b4, proof: b0.proof }, // a proof of another leaf
      { ...b4, batchId: 4242 },
      ...withdrawnBatch.credentials,
      single.credential,
      revokedSingle.credential,
      f.devices.suspended.credential,
      f.devices.stranger.credential, // never enrolled
      { ...single.credential, record: { ...single.credential.record, region: f.devices.a.credential.record.network } }, // another record under its id
    ];
    const ledger = await readFleetEvents(f.fleet, 0);
    const batches = new Map<number, { root: string; revoked: boolean } | undefined>();
    for (const id of [batch.batchId, withdrawnBatch.batchId]) {
      const [root, , revoked] = await f.fleet.deviceBatch(id);
      batches.set(id, { root, revoked });
    }
    batches.set(4242, undefined);
    const expected = { active: undefined, unknown: /^device is not enrolled/, revoked: /^device is withdrawn/, suspended: /^device is suspended$/ };
    for (const [i, c] of cases.entries()) {
      const onChain = ledgerName(DEVICE_STANDING, await f.fleet.deviceStanding(c.record, c.batchId, c.proof));
      const local = standingProblem(c, ledger, batches);
      const want = expected[onChain];
      if (want === undefined) expect(local, `case ${i}: the chain says active`).to.equal(undefined);
      else expect(local, `case ${i}: the chain says ${onChain}`).to.match(want);
    }
  });
});
