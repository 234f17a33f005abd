import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "../cli/cliHarness";
import { ChainEventStream } from "../../../agent/chain/eventStream";
import { MemoryStreamStore } from "../../../agent/chain/eventStreamStore";
import { FleetStore } from "../../../agent/tracker/store";
import { LedgerMirror, fillMissingNames } from "../../../agent/tracker/ledgerMirror";
import { registryDomain, signRelease, computeReleaseId } from "../../../agent/crypto/releaseSignature";
import { componentId, normalizeRelease } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";

describe("agent/tracker/ledgerMirror: the fleet database follows the ledger, reorganisations included (REQ-10b-i, REQ-10b-ii)", function () {
  this.timeout(120_000);
  let c: CliChain;
  let dir: string;
  let db: FleetStore;
  let nonce = 0;
  const send = async (tx: (o: { nonce: number }) => Promise<{ wait(): Promise<unknown> }>) => (await tx({ nonce: nonce++ })).wait();

  before(async () => {
    c = await startCliChain();
    dir = mkdtempSync(path.join(tmpdir(), "ota-mirror-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
    nonce = Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"]));
    const r = c.registry.connect(c.admin);
    await send((o) => r.registerProvider("Acme", o));
    await send((o) => r.addProviderSigner(1, c.admin.address, o));
    await send((o) => r.registerAuthor(c.admin.address, 1, o));
    await send((o) => r.registerHardwareClass("rev-a", o));
    await send((o) => r.registerComponent("acme.bootloader", 1, o));
  });
  after(async () => {
    db?.close();
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function publish(version: string) {
    const domain = registryDomain(31337, String(c.registry.target));
    const record = normalizeRelease({
      provider: 1,
      component: componentId("acme.bootloader"),
      version: encodeVersion(version),
      fileHash: keccak256(toUtf8Bytes(version)),
      fileLink: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
      fileName: "b.bin",
      fileSize: 10n,
      merkleRoot: keccak256(toUtf8Bytes("root " + version)),
      hardware: [1],
      dependencies: [],
    });
    const signature = await signRelease(c.admin, domain, record);
    await send((o) => c.registry.connect(c.admin).publishRelease(record, c.admin.address, signature, [], o));
    return computeReleaseId(domain, record).toLowerCase();
  }

  it("mirrors releases, flags, revocations and devices, and undoes what a reorganisation removed", async () => {
    const stream = new ChainEventStream(
      {
        provider: c.provider,
        store: new MemoryStreamStore(),
        handler: new LedgerMirror(db, {
          registry: String(c.registry.target),
          fleet: String(c.fleet.target),
          domain: registryDomain(31337, String(c.registry.target)),
        }),
      },
      { filters: [{ address: [String(c.registry.target), String(c.fleet.target)] }], fromBlock: 0 },
    );
    const v1 = await publish("1.0.0");
    const key = Wallet.createRandom();
    const device = {
      id: keccak256(toUtf8Bytes("mirror device")),
      publicKey: key.signingKey.compressedPublicKey,
      hardwareClass: 1,
      network: encodeBytes32String("n"),
      region: encodeBytes32String("r"),
    };
    await send((o) => c.fleet.connect(c.admin).enrolDevice(device, o));
    await stream.pollOnce();
    expect(db.catalogue.releases().map((r) => [r.id, r.status])).to.deep.equal([[v1, "active"]]);
    expect(db.devices.get(device.id)).to.include({ standing: "active", hardwareClass: 1 });

    // A branch that flags v1, publishes v2 and suspends the device; then it is reorganised away.
    const snapshot = await c.provider.send("evm_snapshot", []);
    const nonceBefore = nonce;
    await send((o) => c.registry.connect(c.admin).flagVulnerable(v1, "CVE-1", o));
    const v2 = await publish("2.0.0");
    await send((o) => c.fleet.connect(c.admin).suspendDevice(device.id, "lost", o));
    await stream.pollOnce();
    expect(
      db.catalogue
        .releases()
        .map((r) => [r.id, r.status])
        .sort(),
    ).to.deep.equal(
      [
        [v1, "vulnerable"],
        [v2, "active"],
      ].sort(),
    );
    expect(db.devices.get(device.id)!.standing).to.equal("suspended");

    await c.provider.send("evm_revert", [snapshot]);
    nonce = nonceBefore;
    const v3 = await publish("3.0.0"); // the new branch
    await c.provider.send("evm_mine", []);
    await c.provider.send("evm_mine", []);
    await c.provider.send("evm_mine", []);
    await stream.pollOnce();
    expect(
      db.catalogue
        .releases()
        .map((r) => [r.id, r.status])
        .sort(),
    ).to.deep.equal(
      [
        [v1, "active"],
        [v3, "active"],
      ].sort(),
    );
    expect(db.devices.get(device.id)!.standing).to.equal("active");

    // The same batch delivered twice (a crash before the checkpoint) changes nothing.
    await stream.pollOnce();
    expect(db.catalogue.releases()).to.have.length(2);

    // Standing as the fleet registry computes it: a suspension outlives a withdrawn record and a
    // re-enrolment with a new key; a withdrawn record outranks a suspension.
    const standingOnChain = async (r: typeof device) => ["unknown", "active", "suspended", "revoked"][Number(await c.fleet.deviceStanding(r, 0, []))];
    await send((o) => c.fleet.connect(c.admin).suspendDevice(device.id, "lost", o));
    await send((o) => c.fleet.connect(c.admin).revokeDeviceRecord(device, 0, [], "key leaked", o));
    await stream.pollOnce();
    expect(db.devices.get(device.id)!.standing)
      .to.equal("revoked")
      .and.to.equal(await standingOnChain(device));
    const rekeyed = { ...device, publicKey: Wallet.createRandom().signingKey.compressedPublicKey };
    await send((o) => c.fleet.connect(c.admin).enrolDevice(rekeyed, o));
    await stream.pollOnce();
    expect(db.devices.get(device.id)!.standing)
      .to.equal("suspended")
      .and.to.equal(await standingOnChain(rekeyed));
    expect(db.devices.get(device.id)!.publicKey).to.equal(rekeyed.publicKey.toLowerCase());
  });

  it("CAP-11.2-a CAP-11.2-b-iii: mirrors component and hardware class names from their registrations, drops one a reorganisation removed, and reads those it missed from the registry's views", async () => {
    const mirror = () =>
      new ChainEventStream(
        {
          provider: c.provider,
          store: new MemoryStreamStore(),
          handler: new LedgerMirror(db, {
            registry: String(c.registry.target),
            fleet: String(c.fleet.target),
            domain: registryDomain(31337, String(c.registry.target)),
          }),
        },
        { filters: [{ address: [String(c.registry.target), String(c.fleet.target)] }], fromBlock: 0 },
      );
    const stream = mirror();
    await stream.pollOnce();
    const BOOT = componentId("acme.bootloader");
    expect(db.catalogue.names().component(BOOT)).to.equal("acme.bootloader");
    expect(db.catalogue.names().hardware(1)).to.equal("rev-a");
    expect(db.catalogue.names().hardware(2)).to.equal(null);

    // A class and a component registered on a branch that is then reorganised away: their names go with it.
    const snapshot = await c.provider.send("evm_snapshot", []);
    const nonceBefore = nonce;
    await send((o) => c.registry.connect(c.admin).registerHardwareClass("rev-z", o));
    await send((o) => c.registry.connect(c.admin).registerComponent("acme.ghost", 1, o));
    await stream.pollOnce();
    expect([db.catalogue.names().hardware(2), db.catalogue.names().component(componentId("acme.ghost"))]).to.deep.equal(["rev-z", "acme.ghost"]);
    await c.provider.send("evm_revert", [snapshot]);
    nonce = nonceBefore;
    await send((o) => c.registry.connect(c.admin).registerHardwareClass("rev-b", o)); // class 2 on the new branch
    await c.provider.send("evm_mine", []);
    await c.provider.send("evm_mine", []);
    await stream.pollOnce();
    expect([db.catalogue.names().hardware(2), db.catalogue.names().component(componentId("acme.ghost"))]).to.deep.equal(["rev-b", null]);

    // A database whose mirror passed the registrations before names were kept (an earlier schema),
    // or a stream started after them: the names are read from the registry's views, once each.
    db.catalogue.setHardwareName(1, null);
    db.catalogue.setHardwareName(2, null);
    db.catalogue.setComponentName(BOOT, null);
    expect(db.catalogue.unnamedComponents()).to.deep.equal([BOOT]);
    const calls: string[] = [];
    const counting = {
      hardwareClassCount: () => (calls.push("count"), c.registry.hardwareClassCount()),
      hardwareClass: (id: number) => (calls.push(`hardware ${id}`), c.registry.hardwareClass(id)),
      component: (id: string) => (calls.push(`component ${id}`), c.registry.component(id)),
    } as unknown as Parameters<typeof fillMissingNames>[1];
    expect(await fillMissingNames(db, counting)).to.equal(3);
    expect([db.catalogue.names().hardware(1), db.catalogue.names().hardware(2), db.catalogue.names().component(BOOT)]).to.deep.equal([
      "rev-a",
      "rev-b",
      "acme.bootloader",
    ]);
    expect(calls).to.deep.equal(["count", "hardware 1", "hardware 2", `component ${BOOT}`]);
    // Nothing missing: one call, nothing taken.
    calls.length = 0;
    expect(await fillMissingNames(db, counting)).to.equal(0);
    expect(calls).to.deep.equal(["count"]);
  });
});
