import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { ethers } from "hardhat";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ACME_SIGNER, COMPONENTS, GLOBEX_SIGNER, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import { FLEET_LAYOUT, REGISTRY_LAYOUT, readProvenFacts, signerValidFor, type PackedField } from "../../../agent/chain/provenFacts";
import { readUpdateFacts } from "../../../agent/chain/ledgerLens";
import { buildDeviceBatch, type DeviceRecord } from "../../../agent/crypto/deviceTree";
import type { DeviceCredential } from "../../../agent/crypto/deviceCredential";
import { DEVICE_STANDING, ledgerName } from "../../../agent/core/ledgerCodes";
import { encodeVersion } from "../../../agent/core/version";

interface StorageEntry {
  label: string;
  slot: string;
  offset: number;
  type: string;
}
interface StorageType {
  label: string;
  numberOfBytes: string;
  key?: string;
  value?: string;
  members?: StorageEntry[];
}

/**
 * The compiler's storage layout of `contract` (hardhat.config.ts asks solc for it), from the build
 * info its artifact names (artifacts/contracts/<Contract>.sol/<Contract>.dbg.json): build-info may
 * also hold an older compilation of the same contract, still referenced by artifacts of others.
 */
function compilerLayout(contract: string): { storage: StorageEntry[]; types: Record<string, StorageType> } {
  const dir = path.join(__dirname, "..", "..", "..", "artifacts", "build-info");
  const dbg = path.join(__dirname, "..", "..", "..", "artifacts", "contracts", `${contract}.sol`, `${contract}.dbg.json`);
  const named = path.basename((JSON.parse(readFileSync(dbg, "utf8")) as { buildInfo: string }).buildInfo);
  for (const file of [named, ...readdirSync(dir).filter((f) => f !== named)]) {
    const info = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as {
      output: { contracts: Record<string, Record<string, { storageLayout?: { storage: StorageEntry[]; types: Record<string, StorageType> } }>> };
    };
    for (const byName of Object.values(info.output.contracts)) {
      const layout = byName[contract]?.storageLayout;
      if (layout) return layout;
    }
  }
  throw new Error(`no storage layout of ${contract} in ${dir}: compile (npx hardhat compile) with storageLayout in hardhat.config.ts outputSelection`);
}

function record(label: string): DeviceRecord {
  return {
    id: keccak256(toUtf8Bytes(label)),
    publicKey: new Wallet(keccak256(toUtf8Bytes(`key ${label}`))).signingKey.compressedPublicKey,
    hardwareClass: 1,
    network: encodeBytes32String("factory-floor"),
    region: encodeBytes32String("eu-west"),
  };
}

describe("agent/chain/provenFacts: the facts a device acts on, proven from the registries' storage", () => {
  describe("the slots agree with the compiler's storage layout (a contract change that moves a field fails here, not in a fleet)", () => {
    for (const layout of [REGISTRY_LAYOUT, FLEET_LAYOUT]) {
      it(`${layout.contract}: each variable's slot and key type, and each struct member's slot, offset and size`, () => {
        const { storage, types } = compilerLayout(layout.contract);
        for (const [name, expected] of Object.entries(layout.variables)) {
          const entry = storage.find((e) => e.label === name);
          expect(entry, `${layout.contract}.${name}`).to.not.equal(undefined);
          expect(BigInt(entry!.slot), `${name} slot`).to.equal(expected.slot);
          expect(types[entry!.type].key, `${name} key type`).to.equal(expected.key);
        }
        for (const [struct, members] of Object.entries(layout.structs)) {
          const type = Object.values(types).find((t) => t.label.endsWith(`.${struct}`) && t.members);
          expect(type, `struct ${struct}`).to.not.equal(undefined);
          for (const [member, field] of Object.entries(members as Record<string, PackedField>)) {
            const m = type!.members!.find((x) => x.label === member);
            expect(m, `${struct}.${member}`).to.not.equal(undefined);
            expect([Number(m!.slot), m!.offset, Number(types[m!.type].numberOfBytes)], `${struct}.${member}`).to.deep.equal([
              field.slot,
              field.offset,
              field.bytes,
            ]);
          }
        }
      });
    }
  });

  describe("on Hardhat's node (EDR answers eth_getProof)", () => {
    async function deployed() {
      const c = await catalogFixture();
      const single = record("single device");
      await c.fleet.connect(c.admin).enrolDevice(single);
      const batchRecords = [record("batch a"), record("batch b"), record("batch c")];
      const tree = buildDeviceBatch(batchRecords);
      await c.fleet.connect(c.admin).enrolDeviceBatch(tree.root, batchRecords.length, "ipfs://records");
      const v1 = await publish(c.registry, c.acmeAuthor, makeRelease({ version: encodeVersion("1.0.0"), hardware: [1, 2, 3] }), ACME_SIGNER, c.domain);
      const v2 = await publish(c.registry, c.acmeAuthor, makeRelease({ version: encodeVersion("1.1.0"), hardware: [2] }), ACME_SIGNER, c.domain);
      const g1 = await publish(
        c.registry,
        c.globexAuthor,
        makeRelease({ provider: 2, component: COMPONENTS.globexApp, hardware: [3] }),
        GLOBEX_SIGNER,
        c.domain,
      );
      return { ...c, single, batchRecords, tree, v1, v2, g1 };
    }
    const at = async (d: Awaited<ReturnType<typeof deployed>>) => ({ registry: await d.registry.getAddress(), fleet: await d.fleet.getAddress() });
    const credential = (d: Awaited<ReturnType<typeof deployed>>, i: number): DeviceCredential => ({
      record: d.batchRecords[i],
      batchId: 1,
      proof: d.tree.proofs[i],
    });

    it("CAP-11.3-c REQ-10d-ii: the proven status, bar, signer and standing equal the registries' views, as they change", async () => {
      const d = await loadFixture(deployed);
      const rpc = ethers.provider;
      const q = {
        releases: [d.v1.id, d.v2.id, d.g1.id, keccak256("0x01")],
        provider: 1,
        signer: { provider: 1, address: ACME_SIGNER.address },
        device: { record: d.single, batchId: 0, proof: [] },
      };
      const views = async () => ({
        statuses: await Promise.all(q.releases.map(async (id) => Number(await d.registry.releaseStatus(id)))),
        barred: ((await d.registry.getFunction("provider")(1)) as [string, boolean])[1],
        signer: await d.registry.isProviderSigner(1, ACME_SIGNER.address),
        standing: ledgerName(DEVICE_STANDING, await d.fleet.deviceStanding(d.single, 0, [])),
      });
      const proven = async () => {
        const f = await readProvenFacts(rpc, await at(d), q);
        return {
          statuses: q.releases.map((id) => ["none", "active", "vulnerable", "revoked"].indexOf(f.releases.get(id.toLowerCase())!.status)),
          barred: f.providerBarred,
          signer: f.signerRegistered,
          standing: f.standing,
        };
      };
      expect(await proven()).to.deep.equal(await views());
      expect((await proven()).statuses).to.deep.equal([1, 1, 1, 0]);
      await d.registry.connect(d.auditor).revokeRelease(d.v1.id, "bad");
      await d.registry.connect(d.auditor).flagVulnerable(d.v2.id, "cve");
      await d.registry.connect(d.auditor).barProvider(1, "compromised");
      await d.registry.connect(d.admin).removeProviderSigner(1, ACME_SIGNER.address);
      await d.fleet.connect(d.admin).suspendDevice(d.single.id, "stolen");
      expect(await proven()).to.deep.equal(await views());
      expect(await proven()).to.deep.equal({ statuses: [3, 2, 1, 0], barred: true, signer: false, standing: "suspended" });
    });

    it("REQ-10d-ii CAP-11.3-c: a release's signer is proven valid by its key's term at publication, as the registry's releaseSigner and the lens say: kept after rotation, lost from the compromise time", async () => {
      const d = await loadFixture(deployed);
      const next = new Wallet(keccak256(toUtf8Bytes("acme release signing key, 2027")));
      const lensChain = { provider: ethers.provider, registry: d.registry };
      const check = async (r: typeof d.v1, signer: string) => {
        const proven = await readProvenFacts(ethers.provider, await at(d), { signer: { provider: 1, address: signer, release: r.id } });
        const lens = await readUpdateFacts(lensChain, { release: { id: r.id, record: r.record, signer, signature: r.signature } });
        const [recorded, valid] = await d.registry.releaseSigner(r.id);
        const onLedger = valid && recorded === signer;
        expect([proven.signerRegistered, proven.signerActive, proven.signerCompromised], "proven").to.deep.equal([
          lens.signerRegistered,
          lens.signerActive,
          lens.signerCompromised,
        ]);
        expect(lens.signerRegistered).to.equal(onLedger);
        return { valid: lens.signerRegistered, active: lens.signerActive, compromised: lens.signerCompromised };
      };
      expect(await check(d.v1, ACME_SIGNER.address)).to.deep.equal({ valid: true, active: true, compromised: false });
      // Another key claimed for the release is not the one the registry recorded.
      await d.registry.connect(d.admin).addProviderSigner(1, next.address);
      expect(await check(d.v1, next.address)).to.deep.equal({ valid: false, active: true, compromised: false });
      await d.registry.connect(d.admin).removeProviderSigner(1, ACME_SIGNER.address);
      expect(await check(d.v1, ACME_SIGNER.address)).to.deep.equal({ valid: true, active: false, compromised: false });
      // Compromised from v2's publication: v1 stays valid, v2 does not.
      const v2At = (await d.registry.releaseState(d.v2.id)).publishedAt;
      await d.registry.connect(d.auditor).retireCompromisedSigner(1, ACME_SIGNER.address, v2At);
      expect(await check(d.v1, ACME_SIGNER.address)).to.deep.equal({ valid: true, active: false, compromised: false });
      expect(await check(d.v2, ACME_SIGNER.address)).to.deep.equal({ valid: false, active: false, compromised: true });
      const term = (await readProvenFacts(ethers.provider, await at(d), { signer: { provider: 1, address: ACME_SIGNER.address } })).signerTerm!;
      expect(term).to.deep.include({ ordinal: 1, compromised: true, compromisedSince: Number(v2At) });
      expect(signerValidFor(term, { publishedAt: Number(v2At) - 1, signer: 1 })).to.equal(true);
      expect(signerValidFor(term, { publishedAt: Number(v2At), signer: 1 })).to.equal(false);
      expect(signerValidFor(term, { publishedAt: Number(v2At) - 1, signer: 2 }), "another key's release").to.equal(false);
    });

    it("CAP-11.3-d: a batch device's standing (its Merkle proof checked on the device), withdrawn with its batch or by a single enrolment", async () => {
      const d = await loadFixture(deployed);
      const standing = async (c: DeviceCredential) => (await readProvenFacts(ethers.provider, await at(d), { device: c })).standing;
      const onLedger = async (c: DeviceCredential) => ledgerName(DEVICE_STANDING, await d.fleet.deviceStanding(c.record, c.batchId, c.proof));
      for (const c of [credential(d, 0), credential(d, 1), { ...credential(d, 2), proof: d.tree.proofs[0] }, { ...credential(d, 0), batchId: 9 }])
        expect(await standing(c)).to.equal(await onLedger(c));
      expect(await standing(credential(d, 0))).to.equal("active");
      expect(await standing({ ...credential(d, 2), proof: d.tree.proofs[0] })).to.equal("unknown");
      await d.fleet.connect(d.admin).enrolDevice(d.batchRecords[1]); // enrolled alone: the batch record is superseded
      expect([await standing(credential(d, 1)), await onLedger(credential(d, 1))]).to.deep.equal(["revoked", "revoked"]);
      await d.fleet.connect(d.admin).revokeDeviceBatch(1, "lost");
      expect([await standing(credential(d, 0)), await onLedger(credential(d, 0))]).to.deep.equal(["revoked", "revoked"]);
    });

    it("reads at one block: the header read first, then one eth_getProof per registry (3 calls), and says what it cost", async () => {
      const d = await loadFixture(deployed);
      const f = await readProvenFacts(ethers.provider, await at(d), { releases: [d.v1.id], provider: 1, device: { record: d.single, batchId: 0, proof: [] } });
      const head = await ethers.provider.getBlock("latest");
      expect([f.block.number, f.block.hash]).to.deep.equal([head!.number, head!.hash]);
      expect(f.cost.calls).to.equal(3);
      expect(f.cost.bytes).to.be.greaterThan(1000);
      // At a block named by number, and only if its header has the hash agreed (a quorum's): another is HEADER_INVALID.
      const earlier = await ethers.provider.getBlock(head!.number - 1);
      const atEarlier = await readProvenFacts(ethers.provider, await at(d), { releases: [d.v1.id] }, { block: earlier!.number, agreedHash: earlier!.hash! });
      expect(atEarlier.block.hash).to.equal(earlier!.hash);
      let refused: unknown;
      await readProvenFacts(ethers.provider, await at(d), { releases: [d.v1.id] }, { block: earlier!.number, agreedHash: head!.hash! }).catch(
        (e: unknown) => (refused = e),
      );
      expect((refused as { code?: string })?.code).to.equal("HEADER_INVALID");
      // Releases only: no eth_getProof of the fleet registry.
      expect((await readProvenFacts(ethers.provider, await at(d), { releases: [d.v1.id] })).cost.calls).to.equal(2);
    });
  });
});
