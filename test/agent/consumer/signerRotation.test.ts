import { expect } from "chai";
import path from "node:path";
import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { ACME_SIGNER } from "../../helpers/registryFixture";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { componentId } from "../../../agent/core/release";
import { Refusal } from "../../../agent/server/refusals";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
const BOOT = componentId("acme.bootloader");
const SENSOR = componentId("acme.sensor-fw");
/** The key acme rotates to, and one that is stolen. */
const NEXT_KEY = new Wallet(keccak256(toUtf8Bytes("acme release signing key, 2027")));
const STOLEN_KEY = new Wallet(keccak256(toUtf8Bytes("acme release signing key, stolen")));

/**
 * A real device agent (in-process: chain, firmware server, the agent with its slots, proofs on
 * where the node answers eth_getProof) and a provider that rotates its key, then loses one
 * (issue 19, item 7; docs/adr/0016-signer-rotation.md).
 */
describe("agent/consumer: releases across a signer rotation and a compromised key (issue 19, item 7)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let n = 0;
  let seed = 700;

  before(async () => (f = await serverFixture()));
  after(async () => f?.close());

  const agentFor = (device: DeviceIdentity) =>
    DeviceAgent.open({
      dataDir: path.join(f.dir, `rotation-device-${++n}`),
      device,
      serverUrl: f.server.url,
      chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, domain: f.domain, fromBlock: 0 },
      components: [BOOT, SENSOR],
      policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
      healthCheck: async () => true,
      download: { startJitterMs: 0, timeoutMs: 2000, attempts: 2, backoffMs: 50 },
      blockedRetry: { baseMs: 1, maxMs: 1 },
    });
  const release = (component: string, version: string, signer: Wallet, grant: DeviceIdentity[], depends: string[] = []) =>
    f.release(
      { component, version, file: writeImage(f.dir, `${component}-${version}.bin`, 100 * 1024 + seed, seed++), hardware: ["acme-board-rev-a"], depends },
      { signer, grant },
    );

  it("REQ-10d-ii CAP-11.1-a-v APP-II-2: a device installs a release whose signing key was rotated out after it was published, and a later release by the new key that depends on it", async () => {
    const old = await release("acme.bootloader", "1.0.0", ACME_SIGNER, [f.devices.a]);
    // The provider rotates: the new key first, then the old one retired.
    await f.registry.connect(f.admin).addProviderSigner(1, NEXT_KEY.address);
    await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
    expect(await f.registry.isProviderSigner(1, ACME_SIGNER.address)).to.equal(false);

    const agent = await agentFor(f.devices.a);
    // The server serves it (its gate checks the signer by the same rule), the device verifies and installs it.
    expect((await f.gate.release(old.releaseId)).signer).to.equal(ACME_SIGNER.address);
    expect(await agent.considerRelease(old.releaseId, "new-release")).to.deep.equal({
      releaseId: old.releaseId.toLowerCase(),
      outcome: "confirmed",
      code: "OK",
    });
    // A release by the new key whose dependency's only satisfying release is the rotated-out key's.
    const sensor = await release("acme.sensor-fw", "2.0.0", NEXT_KEY, [f.devices.a], ["acme.bootloader ^1.0.0"]);
    expect(await agent.considerRelease(sensor.releaseId, "new-release")).to.include({ outcome: "confirmed", code: "OK" });
  });

  it("REQ-10d-ii CAP-11.3-c CAP-11.1-a-v: a device refuses a release signed by a key after its compromise time (SIGNER_COMPROMISED), and the server does not serve it; one signed before the time is still taken", async () => {
    await f.registry.connect(f.admin).addProviderSigner(1, STOLEN_KEY.address);
    const before = await release("acme.bootloader", "1.1.0", STOLEN_KEY, [f.devices.b]);
    const after = await release("acme.bootloader", "1.2.0", STOLEN_KEY, [f.devices.b]);
    // The stolen key's first use by the attacker was the second release: that is the compromise time.
    await f.registry.connect(f.auditor).retireCompromisedSigner(1, STOLEN_KEY.address, after.ledger.releasedAt);

    const agent = await agentFor(f.devices.b);
    expect(await agent.considerRelease(before.releaseId, "new-release")).to.include({ outcome: "confirmed", code: "OK" });
    const refused = await agent.considerRelease(after.releaseId, "new-release");
    expect(refused).to.include({ code: "SIGNER_COMPROMISED" });
    expect(refused.outcome).to.not.equal("confirmed");
    expect(agent.slots.snapshot().components[BOOT].slots[agent.slots.snapshot().components[BOOT].active]!.releaseId).to.equal(before.releaseId.toLowerCase());
    // The firmware server's gate refuses it by the same rule, once its follower has seen the compromise.
    let refusal: unknown;
    for (let i = 0; i < 50 && !refusal; i++) {
      await f.gate.release(after.releaseId).catch((e: unknown) => (refusal = e));
      if (!refusal) await new Promise((r) => setTimeout(r, 100));
    }
    expect(refusal).to.be.instanceOf(Refusal);
    expect(refusal).to.deep.include({ code: "RELEASE_NOT_VERIFIED" });
    expect((refusal as Refusal).details).to.include({ reason: "SIGNER_COMPROMISED" });
  });
});
