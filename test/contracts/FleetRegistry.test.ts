import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ContractTransactionResponse, SigningKey, Wallet, ZeroAddress, ZeroHash, getBytes, keccak256, toUtf8Bytes } from "ethers";
import { MerkleTree } from "merkletreejs";
import { DeviceRecord, buildDeviceBatch, deviceLeaf } from "../../agent/crypto/deviceTree";
import { ADMIN_DELAY, ROLES, catalogFixture } from "../helpers/registryFixture";
import type { FleetRegistry, UpdateRegistry } from "../../typechain-types";
import { itRejectsWithoutChange } from "../helpers/itRejects";

// ---------------------------------------------------------------- deterministic test data

const label = ethers.encodeBytes32String;

/** DeviceStanding as the contract returns it. */
const STANDING = { Unknown: 0n, Active: 1n, Suspended: 2n, Revoked: 3n };

/** A key pair derived from a fixed seed. */
function seededWallet(seed: string): Wallet {
  return new Wallet(keccak256(toUtf8Bytes(seed)));
}

/** The 33-byte compressed secp256k1 public key of a wallet. */
function compressedKey(wallet: Wallet): string {
  return SigningKey.computePublicKey(wallet.signingKey.publicKey, true);
}

/** A valid device record whose id and key derive from `seed`; override any field. */
function makeDevice(seed: string, overrides: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    id: keccak256(toUtf8Bytes(`device id: ${seed}`)),
    publicKey: compressedKey(seededWallet(seed)),
    hardwareClass: 1,
    network: label("lorawan"),
    region: label("eu-west"),
    ...overrides,
  };
}

/** `count` device records, spread over the three hardware classes, networks and regions. */
function makeDevices(prefix: string, count: number): DeviceRecord[] {
  const networks = ["lorawan", "nb-iot", "lte-m"];
  const regions = ["eu-west", "us-east", "apac", "line-7"];
  return Array.from({ length: count }, (_, i) =>
    makeDevice(`${prefix} ${i}`, {
      hardwareClass: (i % 3) + 1,
      network: label(networks[i % networks.length]),
      region: label(regions[i % regions.length]),
    }),
  );
}

/** Each way of changing one field of `record`; none of them is the enrolled record. */
function alteredRecords(record: DeviceRecord): Array<[string, DeviceRecord]> {
  const key = getBytes(record.publicKey);
  const flippedPrefix = ethers.hexlify(Uint8Array.from([key[0] === 2 ? 3 : 2, ...key.slice(1)]));
  return [
    ["id", { ...record, id: keccak256(toUtf8Bytes(`another id for ${record.id}`)) }],
    ["public key (another device's key)", { ...record, publicKey: compressedKey(seededWallet(`other key for ${record.id}`)) }],
    ["public key (the other prefix, same x)", { ...record, publicKey: flippedPrefix }],
    ["hardware class", { ...record, hardwareClass: (record.hardwareClass % 3) + 1 }],
    ["network (APP-II-4: a device belongs to one network of the ledger)", { ...record, network: label("sigfox") }],
    ["region", { ...record, region: label("mars-base") }],
  ];
}

const RECORDS_LINK = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/** Enrolled singly in the fleet fixture. */
const DEVICE_A = makeDevice("device A");
/** Enrolled singly and suspended in the fleet fixture. */
const DEVICE_B = makeDevice("device B", { hardwareClass: 2, network: label("nb-iot"), region: label("apac") });
/** Never enrolled. */
const DEVICE_C = makeDevice("device C", { hardwareClass: 3, network: label("lte-m"), region: label("us-east") });
/** Batch 1 of the fleet fixture. */
const BATCH_ONE = makeDevices("batch one device", 5);
const BATCH_ONE_TREE = buildDeviceBatch(BATCH_ONE);

interface ModuleKey {
  id: string;
  signer: string;
  publicKey: string;
}

function makeModule(name: string): ModuleKey {
  const wallet = seededWallet(`tracker module key: ${name}`);
  return { id: keccak256(toUtf8Bytes(`tracker module: ${name}`)), signer: wallet.address, publicKey: compressedKey(wallet) };
}

const SERVER = makeModule("server eu-west");
const RETIRED = makeModule("server decommissioned");
const INTERMEDIATE = makeModule("gateway hall 3");
const FRESH = makeModule("fresh");

// ---------------------------------------------------------------- fixtures

/**
 * The catalog plus a populated fleet: DEVICE_A enrolled singly, DEVICE_B enrolled singly and
 * suspended, batch 1 (BATCH_ONE), an active server tracker module and a retired one.
 */
async function fleetFixture() {
  const base = await catalogFixture();
  const { fleet, admin, tracker } = base;
  await fleet.connect(admin).enrolDevice(DEVICE_A);
  await fleet.connect(admin).enrolDevice(DEVICE_B);
  await fleet.connect(admin).suspendDevice(DEVICE_B.id, "reported stolen");
  await fleet.connect(admin).enrolDeviceBatch(BATCH_ONE_TREE.root, BATCH_ONE.length, RECORDS_LINK);
  await fleet.connect(tracker).registerTrackerModule(SERVER.id, SERVER.signer, SERVER.publicKey, ZeroHash);
  await fleet.connect(tracker).registerTrackerModule(RETIRED.id, RETIRED.signer, RETIRED.publicKey, ZeroHash);
  await fleet.connect(tracker).retireTrackerModule(RETIRED.id);
  return base;
}

type Fixture = Awaited<ReturnType<typeof fleetFixture>>;

/** "reverted" or the stringified result, so a view that reverts can be part of a snapshot. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    return String(await p);
  } catch {
    return "reverted";
  }
}

/** Extra things a rejection case touches, to be read before and after it. */
interface Probe {
  records?: DeviceRecord[];
  ids?: string[];
  modules?: string[];
  batches?: number[];
}

/** Everything a rejected call must leave untouched, read through the views. */
async function fleetSnapshot(f: Fixture, probe: Probe = {}) {
  const { fleet, registry, tracker } = f;
  const singles = [DEVICE_A, DEVICE_B, DEVICE_C, ...(probe.records ?? [])];
  const ids = [...singles.map((r) => r.id), ...BATCH_ONE.map((r) => r.id), ZeroHash, ...(probe.ids ?? [])];
  const modules = [SERVER.id, RETIRED.id, INTERMEDIATE.id, FRESH.id, ZeroHash, ...(probe.modules ?? [])];
  const probeKey = makeModule("snapshot probe");
  return {
    singles: await Promise.all(singles.map((r) => fleet.deviceStanding(r, 0, []))),
    batch: await Promise.all(BATCH_ONE.map((r, i) => fleet.deviceStanding(r, 1, BATCH_ONE_TREE.proofs[i]))),
    suspended: await Promise.all(ids.map((id) => fleet.isDeviceSuspended(id))),
    batches: await Promise.all([0, 1, 2, 3, ...(probe.batches ?? [])].map((b) => outcome(fleet.deviceBatch(b)))),
    modules: await Promise.all(modules.map((m) => outcome(fleet.trackerModule(m)))),
    // Whether each module id is still free to register (ids are never reused).
    moduleIdsFree: await Promise.all(
      modules.map((m) => outcome(fleet.connect(tracker).registerTrackerModule.staticCall(m, probeKey.signer, probeKey.publicKey, ZeroHash))),
    ),
    hardwareClasses: await registry.hardwareClassCount(),
  };
}

interface Rejection {
  call: () => Promise<unknown>;
  error: string;
  args: unknown[];
  probe?: Probe;
}

interface Case {
  name: string;
  run: (f: Fixture) => Promise<Rejection>;
}

/** One test per case: the exact custom error with its exact arguments, and no state change. */
function itRejects(cases: Case[]) {
  itRejectsWithoutChange(cases, { fixture: fleetFixture, contract: (f) => f.fleet, snapshot: fleetSnapshot });
}

/** Gas spent executing a transaction: gasUsed less the intrinsic 21000 and calldata charge. */
async function executionGas(tx: ContractTransactionResponse): Promise<{ gasUsed: bigint; execution: bigint }> {
  const receipt = await tx.wait();
  const calldata = getBytes(tx.data).reduce((sum, b) => sum + (b === 0 ? 4n : 16n), 0n);
  return { gasUsed: receipt!.gasUsed, execution: receipt!.gasUsed - 21_000n - calldata };
}

/** deviceStanding of every record of a batch with its own proof, in chunks of parallel calls. */
async function batchStandings(fleet: FleetRegistry, records: DeviceRecord[], batchId: number, proofs: string[][]) {
  const out: bigint[] = [];
  for (let i = 0; i < records.length; i += 100) {
    const chunk = records.slice(i, i + 100);
    out.push(...(await Promise.all(chunk.map((r, j) => fleet.deviceStanding(r, batchId, proofs[i + j])))));
  }
  return out;
}

let thousand: { records: DeviceRecord[]; tree: ReturnType<typeof buildDeviceBatch> } | undefined;
/** A batch of 1000 devices, built once. */
function thousandDevices() {
  if (thousand === undefined) {
    const records = makeDevices("fleet of a thousand", 1000);
    thousand = { records, tree: buildDeviceBatch(records) };
  }
  return thousand;
}

// ---------------------------------------------------------------- tests

describe("FleetRegistry: device identities (CAP-11.3-d) and tracker-module keys (CAP-11.2-d)", function () {
  describe("deployment", function () {
    it("rejects the zero address as the update registry", async function () {
      const factory = await ethers.getContractFactory("FleetRegistry");
      await expect(factory.deploy(ZeroAddress)).to.be.revertedWithCustomError(factory, "FleetRegistryZeroAddress").withArgs();
    });

    it("reports the update registry whose roles and hardware classes it uses", async function () {
      const { fleet, registry } = await loadFixture(catalogFixture);
      expect(await fleet.updateRegistry()).to.equal(await registry.getAddress());
    });
  });

  describe("enrolDevice: enrolling one device (CAP-11.3-d)", function () {
    it("APP-II-4: enrols a device, emitting DeviceEnrolled with every field of its record, its network among them", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      await expect(fleet.connect(admin).enrolDevice(DEVICE_C))
        .to.emit(fleet, "DeviceEnrolled")
        .withArgs(DEVICE_C.id, DEVICE_C.hardwareClass, DEVICE_C.network, DEVICE_C.region, DEVICE_C.publicKey);
      expect(await fleet.deviceStanding(DEVICE_C, 0, [])).to.equal(STANDING.Active);
      expect(await fleet.isDeviceSuspended(DEVICE_C.id)).to.equal(false);
    });

    it("reports a device as Unknown before it is enrolled", async function () {
      const { fleet } = await loadFixture(catalogFixture);
      expect(await fleet.deviceStanding(DEVICE_C, 0, [])).to.equal(STANDING.Unknown);
    });

    it("reports Active only for the exact enrolled record with batch id 0 and an empty proof", async function () {
      const { fleet } = await loadFixture(fleetFixture);
      expect(await fleet.deviceStanding(DEVICE_A, 0, [])).to.equal(STANDING.Active);
      // The proof is ignored for batch id 0.
      expect(await fleet.deviceStanding(DEVICE_A, 0, [keccak256(toUtf8Bytes("noise"))])).to.equal(STANDING.Active);
      // A single device is not in a batch: batch 1 with an empty proof does not vouch for it.
      expect(await fleet.deviceStanding(DEVICE_A, 1, [])).to.equal(STANDING.Unknown);
      expect(await fleet.deviceStanding(DEVICE_A, 7, [])).to.equal(STANDING.Unknown);
    });

    for (const [field, altered] of alteredRecords(DEVICE_A)) {
      it(`reports Unknown for the enrolled record with its ${field} altered`, async function () {
        const { fleet } = await loadFixture(fleetFixture);
        expect(await fleet.deviceStanding(altered, 0, [])).to.equal(STANDING.Unknown);
      });
    }

    it("accepts both compressed-key prefixes, 0x02 and 0x03", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      const byPrefix = new Map<string, DeviceRecord>();
      for (let i = 0; byPrefix.size < 2; i++) {
        const d = makeDevice(`prefix search ${i}`);
        if (!byPrefix.has(d.publicKey.slice(0, 4))) byPrefix.set(d.publicKey.slice(0, 4), d);
      }
      for (const prefix of ["0x02", "0x03"]) {
        const d = byPrefix.get(prefix)!;
        await expect(fleet.connect(admin).enrolDevice(d)).to.emit(fleet, "DeviceEnrolled");
        expect(await fleet.deviceStanding(d, 0, [])).to.equal(STANDING.Active);
      }
    });

    it("accepts a hardware class as soon as the update registry registers it", async function () {
      const { fleet, registry, admin } = await loadFixture(catalogFixture);
      const d = makeDevice("new board", { hardwareClass: 4 });
      await expect(fleet.connect(admin).enrolDevice(d)).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownHardwareClass").withArgs(4);
      await registry.connect(admin).registerHardwareClass("acme-board-rev-c");
      await expect(fleet.connect(admin).enrolDevice(d)).to.emit(fleet, "DeviceEnrolled").withArgs(d.id, 4, d.network, d.region, d.publicKey);
    });

    it("finding: one active record per device id: enrolling a batch device on its own supersedes its batch record for good (CAP-11.3-d)", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      const device = BATCH_ONE[0];
      const rotated = { ...device, publicKey: compressedKey(seededWallet("batch one device 0, new key")) };
      expect(await fleet.deviceStanding(device, 1, BATCH_ONE_TREE.proofs[0])).to.equal(STANDING.Active);
      // Key rotation: the device is enrolled on its own with a new key; its batch record stops vouching.
      await fleet.connect(admin).enrolDevice(rotated);
      expect(await fleet.deviceStanding(rotated, 0, [])).to.equal(STANDING.Active);
      expect(await fleet.deviceStanding(device, 1, BATCH_ONE_TREE.proofs[0])).to.equal(STANDING.Revoked);
      // The rest of the batch is untouched.
      expect(await fleet.deviceStanding(BATCH_ONE[1], 1, BATCH_ONE_TREE.proofs[1])).to.equal(STANDING.Active);
      // Revoking the single record does not bring the old batch key back: no record of the id is active.
      await fleet.connect(admin).revokeDeviceRecord(rotated, 0, [], "key leaked");
      expect(await fleet.deviceStanding(rotated, 0, [])).to.equal(STANDING.Revoked);
      expect(await fleet.deviceStanding(device, 1, BATCH_ONE_TREE.proofs[0])).to.equal(STANDING.Revoked);
      // The device comes back only through a new single record.
      const again = { ...device, publicKey: compressedKey(seededWallet("batch one device 0, third key")) };
      await fleet.connect(admin).enrolDevice(again);
      expect(await fleet.deviceStanding(again, 0, [])).to.equal(STANDING.Active);
      expect(await fleet.deviceStanding(device, 1, BATCH_ONE_TREE.proofs[0])).to.equal(STANDING.Revoked);
    });

    it("finding: one active record per device id: a batch that also holds a singly enrolled device does not vouch for it (CAP-11.3-d)", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      const other = { ...DEVICE_A, publicKey: compressedKey(seededWallet("device A, a second key")) };
      const batch = buildDeviceBatch([other, DEVICE_C]);
      await fleet.connect(admin).enrolDeviceBatch(batch.root, 2, RECORDS_LINK);
      expect(await fleet.deviceStanding(other, 2, batch.proofs[0])).to.equal(STANDING.Revoked);
      expect(await fleet.deviceStanding(DEVICE_A, 0, [])).to.equal(STANDING.Active);
      expect(await fleet.deviceStanding(DEVICE_C, 2, batch.proofs[1])).to.equal(STANDING.Active);
    });

    describe("rejections: each with its own error and no state change", function () {
      const key = getBytes(DEVICE_C.publicKey);
      const withKey = (publicKey: string | Uint8Array) => ({ ...DEVICE_C, publicKey: ethers.hexlify(publicKey) });
      const uncompressed = seededWallet("device C").signingKey.publicKey; // 65 bytes, prefix 0x04
      const cases: Array<{ name: string; record: DeviceRecord; error: string; args: unknown[] }> = [
        { name: "a zero device id", record: { ...DEVICE_C, id: ZeroHash }, error: "FleetRegistryZeroDeviceId", args: [] },
        { name: "an empty public key", record: withKey("0x"), error: "FleetRegistryInvalidPublicKey", args: [] },
        { name: "a 32-byte public key (prefix 0x02, one byte short)", record: withKey(key.slice(0, 32)), error: "FleetRegistryInvalidPublicKey", args: [] },
        {
          name: "a 34-byte public key (prefix 0x02, one byte over)",
          record: withKey(Uint8Array.from([...key, 0])),
          error: "FleetRegistryInvalidPublicKey",
          args: [],
        },
        { name: "a 65-byte uncompressed public key (prefix 0x04)", record: withKey(uncompressed), error: "FleetRegistryInvalidPublicKey", args: [] },
        {
          name: "a 33-byte public key with prefix 0x04",
          record: withKey(Uint8Array.from([4, ...key.slice(1)])),
          error: "FleetRegistryInvalidPublicKey",
          args: [],
        },
        {
          name: "a 33-byte public key with prefix 0x00",
          record: withKey(Uint8Array.from([0, ...key.slice(1)])),
          error: "FleetRegistryInvalidPublicKey",
          args: [],
        },
        { name: "hardware class 0", record: { ...DEVICE_C, hardwareClass: 0 }, error: "FleetRegistryUnknownHardwareClass", args: [0] },
        {
          name: "hardware class 4 (only 1..3 are registered)",
          record: { ...DEVICE_C, hardwareClass: 4 },
          error: "FleetRegistryUnknownHardwareClass",
          args: [4],
        },
        { name: "hardware class 65535", record: { ...DEVICE_C, hardwareClass: 65535 }, error: "FleetRegistryUnknownHardwareClass", args: [65535] },
        { name: "a device already enrolled (the same record again)", record: DEVICE_A, error: "FleetRegistryDeviceAlreadyEnrolled", args: [DEVICE_A.id] },
        {
          name: "a device already enrolled (its id with a new key: no silent re-keying)",
          record: { ...DEVICE_A, publicKey: DEVICE_C.publicKey },
          error: "FleetRegistryDeviceAlreadyEnrolled",
          args: [DEVICE_A.id],
        },
        {
          name: "a suspended device already enrolled (no re-enrolment to shed the suspension)",
          record: { ...DEVICE_B, region: label("elsewhere") },
          error: "FleetRegistryDeviceAlreadyEnrolled",
          args: [DEVICE_B.id],
        },
      ];
      itRejects(
        cases.map((c) => ({
          name: c.name,
          run: async (f) => ({ call: () => f.fleet.connect(f.admin).enrolDevice(c.record), error: c.error, args: c.args, probe: { records: [c.record] } }),
        })),
      );

      const nonAdministrators = ["outsider", "tracker", "auditor", "acmeAuthor", "newAdmin"] as const;
      itRejects(
        nonAdministrators.map((who) => ({
          name: `an enrolment by the ${who}, who is not an administrator`,
          run: async (f) => ({
            call: () => f.fleet.connect(f[who]).enrolDevice(DEVICE_C),
            error: "FleetRegistryUnauthorized",
            args: [f[who].address, ROLES.ADMINISTRATOR],
            probe: { records: [DEVICE_C] },
          }),
        })),
      );
    });
  });

  describe("enrolDeviceBatch: enrolling devices as a Merkle root (CAP-11.3-d)", function () {
    it("enrols a batch of 5, emitting DeviceBatchEnrolled, and every record verifies with its proof", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      const records = makeDevices("batch of five", 5);
      const { root, proofs } = buildDeviceBatch(records);
      expect(await fleet.connect(admin).enrolDeviceBatch.staticCall(root, 5, RECORDS_LINK)).to.equal(1n);
      await expect(fleet.connect(admin).enrolDeviceBatch(root, 5, RECORDS_LINK))
        .to.emit(fleet, "DeviceBatchEnrolled")
        .withArgs(1, root, 5, RECORDS_LINK);
      expect(await fleet.deviceBatch(1)).to.deep.equal([root, 5n, false]);
      expect(await batchStandings(fleet, records, 1, proofs)).to.deep.equal(records.map(() => STANDING.Active));
      // A batch device is not enrolled singly.
      expect(await fleet.deviceStanding(records[0], 0, [])).to.equal(STANDING.Unknown);
    });

    it("enrols a batch of 1000 and every one of its records verifies with its proof", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      const { records, tree } = thousandDevices();
      await expect(fleet.connect(admin).enrolDeviceBatch(tree.root, 1000, RECORDS_LINK))
        .to.emit(fleet, "DeviceBatchEnrolled")
        .withArgs(1, tree.root, 1000, RECORDS_LINK);
      expect(await fleet.deviceBatch(1)).to.deep.equal([tree.root, 1000n, false]);
      const standings = await batchStandings(fleet, records, 1, tree.proofs);
      expect(standings.filter((s) => s === STANDING.Active)).to.have.length(1000);
    });

    it("costs the same execution gas for 1, 5 and 1000 devices: one slot whatever the size", async function () {
      const sizes = [1, 5, 1000];
      const gas: Array<{ gasUsed: bigint; execution: bigint }> = [];
      for (const size of sizes) {
        // Each batch is batch 1 of a fresh deployment, so the storage writes are alike.
        const { fleet, admin } = await loadFixture(catalogFixture);
        const records = size === 1000 ? thousandDevices().records : makeDevices(`gas batch of ${size}`, size);
        const { root } = buildDeviceBatch(records);
        gas.push(await executionGas(await fleet.connect(admin).enrolDeviceBatch(root, size, RECORDS_LINK)));
      }
      // gasUsed differs only by the intrinsic calldata charge (4 gas per zero byte, 16 per other
      // byte of the root and count); what the contract spends is one constant.
      expect(gas.map((g) => g.execution)).to.deep.equal(sizes.map(() => gas[0].execution));
    });

    it("numbers batches 1, 2, 3, ... and keeps each batch's root and size", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      const two = buildDeviceBatch(makeDevices("batch two device", 3));
      const three = buildDeviceBatch(makeDevices("batch three device", 8));
      expect(await fleet.connect(admin).enrolDeviceBatch.staticCall(two.root, 3, "")).to.equal(2n);
      await expect(fleet.connect(admin).enrolDeviceBatch(two.root, 3, ""))
        .to.emit(fleet, "DeviceBatchEnrolled")
        .withArgs(2, two.root, 3, "");
      await expect(fleet.connect(admin).enrolDeviceBatch(three.root, 8, RECORDS_LINK))
        .to.emit(fleet, "DeviceBatchEnrolled")
        .withArgs(3, three.root, 8, RECORDS_LINK);
      expect(await fleet.deviceBatch(1)).to.deep.equal([BATCH_ONE_TREE.root, 5n, false]);
      expect(await fleet.deviceBatch(2)).to.deep.equal([two.root, 3n, false]);
      expect(await fleet.deviceBatch(3)).to.deep.equal([three.root, 8n, false]);
    });

    it("enrols a batch of one device: its root is its leaf and its proof is empty", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      const { root, proofs } = buildDeviceBatch([DEVICE_C]);
      expect(proofs).to.deep.equal([[]]);
      await fleet.connect(admin).enrolDeviceBatch(root, 1, RECORDS_LINK);
      expect(await fleet.deviceStanding(DEVICE_C, 1, [])).to.equal(STANDING.Active);
    });

    describe("proofs that do not vouch for a record report Unknown", function () {
      /** Batch 1 (BATCH_ONE) and batch 2 (four other devices). */
      const BATCH_TWO = makeDevices("batch two device", 4);
      const BATCH_TWO_TREE = buildDeviceBatch(BATCH_TWO);
      async function twoBatchesFixture() {
        const f = await fleetFixture();
        await f.fleet.connect(f.admin).enrolDeviceBatch(BATCH_TWO_TREE.root, BATCH_TWO.length, RECORDS_LINK);
        return f;
      }

      it("every record of both batches verifies with its own proof against its own batch", async function () {
        const { fleet } = await loadFixture(twoBatchesFixture);
        expect(await batchStandings(fleet, BATCH_ONE, 1, BATCH_ONE_TREE.proofs)).to.deep.equal(BATCH_ONE.map(() => STANDING.Active));
        expect(await batchStandings(fleet, BATCH_TWO, 2, BATCH_TWO_TREE.proofs)).to.deep.equal(BATCH_TWO.map(() => STANDING.Active));
      });

      it("a record with another record's proof", async function () {
        const { fleet } = await loadFixture(twoBatchesFixture);
        for (let i = 0; i < BATCH_ONE.length; i++) {
          const other = BATCH_ONE_TREE.proofs[(i + 1) % BATCH_ONE.length];
          expect(await fleet.deviceStanding(BATCH_ONE[i], 1, other)).to.equal(STANDING.Unknown);
        }
      });

      it("a record with an empty, truncated, tampered or reordered proof", async function () {
        const { fleet } = await loadFixture(twoBatchesFixture);
        const record = BATCH_ONE[0];
        const proof = BATCH_ONE_TREE.proofs[0];
        expect(proof.length).to.be.greaterThan(1);
        const tampered = [...proof];
        tampered[0] = ethers.toBeHex(BigInt(tampered[0]) ^ 1n, 32);
        for (const wrong of [[], proof.slice(1), proof.slice(0, -1), tampered, [...proof].reverse(), [...proof, ZeroHash]]) {
          expect(await fleet.deviceStanding(record, 1, wrong)).to.equal(STANDING.Unknown);
        }
      });

      it("a record with its proof against another batch, or against a batch that does not exist", async function () {
        const { fleet } = await loadFixture(twoBatchesFixture);
        for (let i = 0; i < BATCH_ONE.length; i++) {
          expect(await fleet.deviceStanding(BATCH_ONE[i], 2, BATCH_ONE_TREE.proofs[i])).to.equal(STANDING.Unknown);
          expect(await fleet.deviceStanding(BATCH_ONE[i], 3, BATCH_ONE_TREE.proofs[i])).to.equal(STANDING.Unknown);
        }
        for (let i = 0; i < BATCH_TWO.length; i++) {
          expect(await fleet.deviceStanding(BATCH_TWO[i], 1, BATCH_TWO_TREE.proofs[i])).to.equal(STANDING.Unknown);
          // A batch device asked about as a single device.
          expect(await fleet.deviceStanding(BATCH_TWO[i], 0, BATCH_TWO_TREE.proofs[i])).to.equal(STANDING.Unknown);
        }
      });

      for (const [field, altered] of alteredRecords(BATCH_ONE[2])) {
        it(`a batch record with its ${field} altered, with the original's proof`, async function () {
          const { fleet } = await loadFixture(twoBatchesFixture);
          expect(await fleet.deviceStanding(altered, 1, BATCH_ONE_TREE.proofs[2])).to.equal(STANDING.Unknown);
        });
      }
    });

    it("does not vouch for a batch record with the zero device id, which could never be suspended", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      // Batch records are not checked on-chain, so a tool other than ours (buildDeviceBatch refuses
      // it) can slip a zero id into a batch.
      const records = [makeDevice("zero-id device", { id: ZeroHash }), ...makeDevices("beside zero id", 3)];
      const leaves = records.map((r) => Buffer.from(getBytes(deviceLeaf(r))));
      const tree = new MerkleTree(leaves, (d: Buffer) => Buffer.from(getBytes(keccak256(d))), { sortPairs: true });
      const root = tree.getHexRoot();
      const proofs = leaves.map((l) => tree.getHexProof(l));
      await fleet.connect(admin).enrolDeviceBatch(root, records.length, RECORDS_LINK);
      expect(await batchStandings(fleet, records, 1, proofs)).to.deep.equal([STANDING.Unknown, STANDING.Active, STANDING.Active, STANDING.Active]);
      await expect(fleet.connect(admin).suspendDevice(ZeroHash, "cannot be suspended"))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryZeroDeviceId")
        .withArgs();
    });

    describe("deviceBatch view", function () {
      for (const batchId of [0, 2, 2n ** 64n - 1n]) {
        it(`reverts with FleetRegistryUnknownBatch for batch ${batchId}, which does not exist`, async function () {
          const { fleet } = await loadFixture(fleetFixture);
          await expect(fleet.deviceBatch(batchId)).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownBatch").withArgs(batchId);
        });
      }
    });

    describe("rejections: each with its own error and no state change", function () {
      const root = buildDeviceBatch(makeDevices("rejected batch", 3)).root;
      itRejects([
        {
          name: "a zero Merkle root",
          run: async (f) => ({ call: () => f.fleet.connect(f.admin).enrolDeviceBatch(ZeroHash, 3, RECORDS_LINK), error: "FleetRegistryEmptyBatch", args: [] }),
        },
        {
          name: "a count of zero",
          run: async (f) => ({ call: () => f.fleet.connect(f.admin).enrolDeviceBatch(root, 0, RECORDS_LINK), error: "FleetRegistryEmptyBatch", args: [] }),
        },
        {
          name: "a zero root and a count of zero",
          run: async (f) => ({ call: () => f.fleet.connect(f.admin).enrolDeviceBatch(ZeroHash, 0, ""), error: "FleetRegistryEmptyBatch", args: [] }),
        },
        ...(["outsider", "tracker", "auditor", "acmeAuthor"] as const).map((who) => ({
          name: `a batch from the ${who}, who is not an administrator`,
          run: async (f: Fixture) => ({
            call: () => f.fleet.connect(f[who]).enrolDeviceBatch(root, 3, RECORDS_LINK),
            error: "FleetRegistryUnauthorized",
            args: [f[who].address, ROLES.ADMINISTRATOR],
          }),
        })),
      ]);
    });
  });

  describe("suspendDevice / reinstateDevice: suspension by device id (CAP-11.3-d)", function () {
    it("suspends a singly enrolled device (Suspended) and reinstates it (Active), emitting events naming the caller", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      await expect(fleet.connect(admin).suspendDevice(DEVICE_A.id, "firmware tampering detected"))
        .to.emit(fleet, "DeviceSuspended")
        .withArgs(DEVICE_A.id, admin.address, "firmware tampering detected");
      expect(await fleet.deviceStanding(DEVICE_A, 0, [])).to.equal(STANDING.Suspended);
      expect(await fleet.isDeviceSuspended(DEVICE_A.id)).to.equal(true);
      await expect(fleet.connect(admin).reinstateDevice(DEVICE_A.id)).to.emit(fleet, "DeviceReinstated").withArgs(DEVICE_A.id, admin.address);
      expect(await fleet.deviceStanding(DEVICE_A, 0, [])).to.equal(STANDING.Active);
      expect(await fleet.isDeviceSuspended(DEVICE_A.id)).to.equal(false);
    });

    it("suspends and reinstates a batch-enrolled device by its id alone, leaving the rest of the batch Active", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      await expect(fleet.connect(admin).suspendDevice(BATCH_ONE[3].id, "")).to.emit(fleet, "DeviceSuspended").withArgs(BATCH_ONE[3].id, admin.address, "");
      expect(await batchStandings(fleet, BATCH_ONE, 1, BATCH_ONE_TREE.proofs)).to.deep.equal(
        BATCH_ONE.map((_, i) => (i === 3 ? STANDING.Suspended : STANDING.Active)),
      );
      await expect(fleet.connect(admin).reinstateDevice(BATCH_ONE[3].id)).to.emit(fleet, "DeviceReinstated").withArgs(BATCH_ONE[3].id, admin.address);
      expect(await batchStandings(fleet, BATCH_ONE, 1, BATCH_ONE_TREE.proofs)).to.deep.equal(BATCH_ONE.map(() => STANDING.Active));
    });

    it("reports an altered record of a suspended device as Unknown, not Suspended", async function () {
      const { fleet } = await loadFixture(fleetFixture);
      expect(await fleet.deviceStanding(DEVICE_B, 0, [])).to.equal(STANDING.Suspended);
      for (const [, altered] of alteredRecords(DEVICE_B)) {
        expect(await fleet.deviceStanding(altered, 0, [])).to.equal(STANDING.Unknown);
      }
    });

    it("suspends a device id before it is enrolled: the device is Suspended from its enrolment on", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      await expect(fleet.connect(admin).suspendDevice(DEVICE_C.id, "key leaked at the factory"))
        .to.emit(fleet, "DeviceSuspended")
        .withArgs(DEVICE_C.id, admin.address, "key leaked at the factory");
      expect(await fleet.deviceStanding(DEVICE_C, 0, [])).to.equal(STANDING.Unknown);
      await fleet.connect(admin).enrolDevice(DEVICE_C);
      expect(await fleet.deviceStanding(DEVICE_C, 0, [])).to.equal(STANDING.Suspended);
    });

    it("lets another administrator reinstate, naming that administrator in the event", async function () {
      const { fleet, registry, admin, newAdmin } = await loadFixture(fleetFixture);
      await registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, newAdmin.address);
      await expect(fleet.connect(newAdmin).reinstateDevice(DEVICE_B.id)).to.emit(fleet, "DeviceReinstated").withArgs(DEVICE_B.id, newAdmin.address);
      await expect(fleet.connect(newAdmin).suspendDevice(DEVICE_B.id, "again"))
        .to.emit(fleet, "DeviceSuspended")
        .withArgs(DEVICE_B.id, newAdmin.address, "again");
    });

    describe("rejections: each with its own error and no state change", function () {
      const cases: Case[] = [
        {
          name: "suspending the zero device id",
          run: async (f) => ({ call: () => f.fleet.connect(f.admin).suspendDevice(ZeroHash, "x"), error: "FleetRegistryZeroDeviceId", args: [] }),
        },
        {
          name: "suspending a device that is already suspended",
          run: async (f) => ({
            call: () => f.fleet.connect(f.admin).suspendDevice(DEVICE_B.id, "again"),
            error: "FleetRegistryDeviceAlreadySuspended",
            args: [DEVICE_B.id],
          }),
        },
        {
          name: "suspending a batch device that is already suspended",
          run: async (f) => {
            await f.fleet.connect(f.admin).suspendDevice(BATCH_ONE[1].id, "lost");
            return {
              call: () => f.fleet.connect(f.admin).suspendDevice(BATCH_ONE[1].id, "lost"),
              error: "FleetRegistryDeviceAlreadySuspended",
              args: [BATCH_ONE[1].id],
            };
          },
        },
        {
          name: "reinstating a device that is not suspended",
          run: async (f) => ({
            call: () => f.fleet.connect(f.admin).reinstateDevice(DEVICE_A.id),
            error: "FleetRegistryDeviceNotSuspended",
            args: [DEVICE_A.id],
          }),
        },
        {
          name: "reinstating a device twice",
          run: async (f) => {
            await f.fleet.connect(f.admin).reinstateDevice(DEVICE_B.id);
            return { call: () => f.fleet.connect(f.admin).reinstateDevice(DEVICE_B.id), error: "FleetRegistryDeviceNotSuspended", args: [DEVICE_B.id] };
          },
        },
        {
          name: "reinstating the zero device id (never suspended)",
          run: async (f) => ({ call: () => f.fleet.connect(f.admin).reinstateDevice(ZeroHash), error: "FleetRegistryDeviceNotSuspended", args: [ZeroHash] }),
        },
        ...(["outsider", "tracker", "auditor"] as const).flatMap((who): Case[] => [
          {
            name: `a suspension by the ${who}, who is not an administrator`,
            run: async (f) => ({
              call: () => f.fleet.connect(f[who]).suspendDevice(DEVICE_A.id, "x"),
              error: "FleetRegistryUnauthorized",
              args: [f[who].address, ROLES.ADMINISTRATOR],
            }),
          },
          {
            name: `a reinstatement by the ${who}, who is not an administrator`,
            run: async (f) => ({
              call: () => f.fleet.connect(f[who]).reinstateDevice(DEVICE_B.id),
              error: "FleetRegistryUnauthorized",
              args: [f[who].address, ROLES.ADMINISTRATOR],
            }),
          },
        ]),
      ];
      itRejects(cases);
    });
  });

  describe("tracker modules: registering and retiring keys (CAP-11.2-d)", function () {
    it("registers a server module (parent zero), then an intermediate under it, emitting TrackerModuleRegistered", async function () {
      const { fleet, tracker } = await loadFixture(catalogFixture);
      await expect(fleet.connect(tracker).registerTrackerModule(SERVER.id, SERVER.signer, SERVER.publicKey, ZeroHash))
        .to.emit(fleet, "TrackerModuleRegistered")
        .withArgs(SERVER.id, SERVER.signer, ZeroHash, SERVER.publicKey);
      await expect(fleet.connect(tracker).registerTrackerModule(INTERMEDIATE.id, INTERMEDIATE.signer, INTERMEDIATE.publicKey, SERVER.id))
        .to.emit(fleet, "TrackerModuleRegistered")
        .withArgs(INTERMEDIATE.id, INTERMEDIATE.signer, SERVER.id, INTERMEDIATE.publicKey);
      expect(await fleet.trackerModule(SERVER.id)).to.deep.equal([SERVER.signer, ZeroHash]);
      expect(await fleet.trackerModule(INTERMEDIATE.id)).to.deep.equal([INTERMEDIATE.signer, SERVER.id]);
    });

    it("registers a module under an intermediate (three levels)", async function () {
      const { fleet, tracker } = await loadFixture(fleetFixture);
      await fleet.connect(tracker).registerTrackerModule(INTERMEDIATE.id, INTERMEDIATE.signer, INTERMEDIATE.publicKey, SERVER.id);
      await expect(fleet.connect(tracker).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, INTERMEDIATE.id))
        .to.emit(fleet, "TrackerModuleRegistered")
        .withArgs(FRESH.id, FRESH.signer, INTERMEDIATE.id, FRESH.publicKey);
      expect(await fleet.trackerModule(FRESH.id)).to.deep.equal([FRESH.signer, INTERMEDIATE.id]);
    });

    it("lets the tracker retire a module, emitting TrackerModuleRetired; the view then reverts", async function () {
      const { fleet, tracker } = await loadFixture(fleetFixture);
      await expect(fleet.connect(tracker).retireTrackerModule(SERVER.id)).to.emit(fleet, "TrackerModuleRetired").withArgs(SERVER.id, tracker.address);
      await expect(fleet.trackerModule(SERVER.id)).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownTrackerModule").withArgs(SERVER.id);
    });

    it("lets an administrator retire a module (a lost module), emitting TrackerModuleRetired naming the administrator", async function () {
      const { fleet, admin } = await loadFixture(fleetFixture);
      await expect(fleet.connect(admin).retireTrackerModule(SERVER.id)).to.emit(fleet, "TrackerModuleRetired").withArgs(SERVER.id, admin.address);
      await expect(fleet.trackerModule(SERVER.id)).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownTrackerModule").withArgs(SERVER.id);
    });

    it("finding: modules are owned by the account that registered them: only the owner or an administrator retires a module or adds children under it (CAP-11.2-d)", async function () {
      const { fleet, registry, admin, tracker, outsider } = await loadFixture(fleetFixture);
      const other = outsider; // a second tracker operator
      await registry.connect(admin).grantRole(ROLES.TRACKER, other.address);
      expect(await fleet.trackerModuleOwner(SERVER.id)).to.equal(tracker.address);
      // The other operator can neither retire the tracker's server module nor grow its subtree.
      await expect(fleet.connect(other).retireTrackerModule(SERVER.id))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryNotTrackerModuleOwner")
        .withArgs(SERVER.id, tracker.address, other.address);
      await expect(fleet.connect(other).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, SERVER.id))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryNotTrackerModuleOwner")
        .withArgs(SERVER.id, tracker.address, other.address);
      expect(await fleet.trackerModule(SERVER.id)).to.deep.equal([SERVER.signer, ZeroHash]);
      // It runs a hierarchy of its own, which it owns.
      await fleet.connect(other).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, ZeroHash);
      await fleet.connect(other).registerTrackerModule(INTERMEDIATE.id, INTERMEDIATE.signer, INTERMEDIATE.publicKey, FRESH.id);
      expect(await fleet.trackerModuleOwner(INTERMEDIATE.id)).to.equal(other.address);
      await expect(fleet.connect(tracker).retireTrackerModule(INTERMEDIATE.id))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryNotTrackerModuleOwner")
        .withArgs(INTERMEDIATE.id, other.address, tracker.address);
      await expect(fleet.connect(other).retireTrackerModule(INTERMEDIATE.id)).to.emit(fleet, "TrackerModuleRetired").withArgs(INTERMEDIATE.id, other.address);
      // An administrator may do both, for any module (a lost module, an operator gone).
      await registry.connect(admin).grantRole(ROLES.TRACKER, admin.address);
      const child = makeModule("admin's child of the server");
      await expect(fleet.connect(admin).registerTrackerModule(child.id, child.signer, child.publicKey, SERVER.id))
        .to.emit(fleet, "TrackerModuleRegistered")
        .withArgs(child.id, child.signer, SERVER.id, child.publicKey);
      expect(await fleet.trackerModuleOwner(child.id)).to.equal(admin.address);
      await expect(fleet.connect(admin).retireTrackerModule(FRESH.id)).to.emit(fleet, "TrackerModuleRetired").withArgs(FRESH.id, admin.address);
      await expect(fleet.trackerModuleOwner(FRESH.id)).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownTrackerModule").withArgs(FRESH.id);
    });

    it("lets the administrator register once it also holds the tracker role", async function () {
      const { fleet, registry, admin } = await loadFixture(fleetFixture);
      expect(await registry.hasRole(ROLES.TRACKER, admin.address)).to.equal(false);
      await expect(fleet.connect(admin).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, ZeroHash))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(admin.address, ROLES.TRACKER);
      await registry.connect(admin).grantRole(ROLES.TRACKER, admin.address);
      await expect(fleet.connect(admin).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, ZeroHash))
        .to.emit(fleet, "TrackerModuleRegistered")
        .withArgs(FRESH.id, FRESH.signer, ZeroHash, FRESH.publicKey);
    });

    describe("trackerModule view", function () {
      const unknown = keccak256(toUtf8Bytes("tracker module: never registered"));
      for (const [name, id] of [
        ["an unknown id", unknown],
        ["the zero id", ZeroHash],
        ["a retired module", RETIRED.id],
      ] as const) {
        it(`reverts with FleetRegistryUnknownTrackerModule for ${name}`, async function () {
          const { fleet } = await loadFixture(fleetFixture);
          await expect(fleet.trackerModule(id)).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownTrackerModule").withArgs(id);
        });
      }
    });

    describe("registration rejections: each with its own error and no state change", function () {
      const register = (f: Fixture, m: Partial<ModuleKey> & { parent?: string } = {}, sender: "tracker" | "admin" | "outsider" | "auditor" = "tracker") =>
        f.fleet.connect(f[sender]).registerTrackerModule(m.id ?? FRESH.id, m.signer ?? FRESH.signer, m.publicKey ?? FRESH.publicKey, m.parent ?? ZeroHash);
      const key = getBytes(FRESH.publicKey);
      const unknownParent = keccak256(toUtf8Bytes("tracker module: nowhere"));
      const cases: Case[] = [
        { name: "a zero module id", run: async (f) => ({ call: () => register(f, { id: ZeroHash }), error: "FleetRegistryZeroModuleId", args: [] }) },
        {
          name: "the id of an active module",
          run: async (f) => ({ call: () => register(f, { id: SERVER.id }), error: "FleetRegistryTrackerModuleExists", args: [SERVER.id] }),
        },
        {
          name: "the id of a retired module (ids are never reused)",
          run: async (f) => ({
            call: () => register(f, { id: RETIRED.id, signer: RETIRED.signer, publicKey: RETIRED.publicKey }),
            error: "FleetRegistryTrackerModuleExists",
            args: [RETIRED.id],
          }),
        },
        {
          name: "a zero signer address",
          run: async (f) => ({ call: () => register(f, { signer: ZeroAddress }), error: "FleetRegistryZeroAddress", args: [] }),
        },
        { name: "an empty public key", run: async (f) => ({ call: () => register(f, { publicKey: "0x" }), error: "FleetRegistryInvalidPublicKey", args: [] }) },
        {
          name: "a 32-byte public key",
          run: async (f) => ({ call: () => register(f, { publicKey: ethers.hexlify(key.slice(0, 32)) }), error: "FleetRegistryInvalidPublicKey", args: [] }),
        },
        {
          name: "a 65-byte uncompressed public key",
          run: async (f) => ({
            call: () => register(f, { publicKey: seededWallet("tracker module key: fresh").signingKey.publicKey }),
            error: "FleetRegistryInvalidPublicKey",
            args: [],
          }),
        },
        {
          name: "a 33-byte public key with prefix 0x04",
          run: async (f) => ({
            call: () => register(f, { publicKey: ethers.hexlify(Uint8Array.from([4, ...key.slice(1)])) }),
            error: "FleetRegistryInvalidPublicKey",
            args: [],
          }),
        },
        {
          name: "an unknown parent",
          run: async (f) => ({ call: () => register(f, { parent: unknownParent }), error: "FleetRegistryUnknownTrackerModule", args: [unknownParent] }),
        },
        {
          name: "a retired parent",
          run: async (f) => ({ call: () => register(f, { parent: RETIRED.id }), error: "FleetRegistryUnknownTrackerModule", args: [RETIRED.id] }),
        },
        {
          name: "the module itself as its parent",
          run: async (f) => ({ call: () => register(f, { parent: FRESH.id }), error: "FleetRegistryUnknownTrackerModule", args: [FRESH.id] }),
        },
        {
          name: "a registration by the administrator, who lacks the tracker role",
          run: async (f) => ({ call: () => register(f, {}, "admin"), error: "FleetRegistryUnauthorized", args: [f.admin.address, ROLES.TRACKER] }),
        },
        {
          name: "a registration by the outsider",
          run: async (f) => ({ call: () => register(f, {}, "outsider"), error: "FleetRegistryUnauthorized", args: [f.outsider.address, ROLES.TRACKER] }),
        },
        {
          name: "a registration by the auditor",
          run: async (f) => ({ call: () => register(f, {}, "auditor"), error: "FleetRegistryUnauthorized", args: [f.auditor.address, ROLES.TRACKER] }),
        },
      ];
      itRejects(cases);
    });

    describe("retirement rejections: each with its own error and no state change", function () {
      const unknown = keccak256(toUtf8Bytes("tracker module: never registered"));
      itRejects([
        {
          name: "retiring an unknown module",
          run: async (f) => ({
            call: () => f.fleet.connect(f.tracker).retireTrackerModule(unknown),
            error: "FleetRegistryUnknownTrackerModule",
            args: [unknown],
          }),
        },
        {
          name: "retiring the zero module id",
          run: async (f) => ({
            call: () => f.fleet.connect(f.tracker).retireTrackerModule(ZeroHash),
            error: "FleetRegistryUnknownTrackerModule",
            args: [ZeroHash],
          }),
        },
        {
          name: "retiring a module twice",
          run: async (f) => ({
            call: () => f.fleet.connect(f.admin).retireTrackerModule(RETIRED.id),
            error: "FleetRegistryUnknownTrackerModule",
            args: [RETIRED.id],
          }),
        },
        {
          name: "a retirement by the outsider",
          run: async (f) => ({
            call: () => f.fleet.connect(f.outsider).retireTrackerModule(SERVER.id),
            error: "FleetRegistryNotTrackerModuleOwner",
            args: [SERVER.id, f.tracker.address, f.outsider.address],
          }),
        },
        {
          name: "a retirement by the auditor",
          run: async (f) => ({
            call: () => f.fleet.connect(f.auditor).retireTrackerModule(SERVER.id),
            error: "FleetRegistryNotTrackerModuleOwner",
            args: [SERVER.id, f.tracker.address, f.auditor.address],
          }),
        },
        {
          name: "a retirement by an author",
          run: async (f) => ({
            call: () => f.fleet.connect(f.acmeAuthor).retireTrackerModule(SERVER.id),
            error: "FleetRegistryNotTrackerModuleOwner",
            args: [SERVER.id, f.tracker.address, f.acmeAuthor.address],
          }),
        },
        {
          name: "finding: a retirement by another tracker operator, who does not own the module",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.TRACKER, f.outsider.address);
            return {
              call: () => f.fleet.connect(f.outsider).retireTrackerModule(SERVER.id),
              error: "FleetRegistryNotTrackerModuleOwner",
              args: [SERVER.id, f.tracker.address, f.outsider.address],
            };
          },
        },
        {
          name: "finding: a module registered under another operator's module",
          run: async (f) => {
            await f.registry.connect(f.admin).grantRole(ROLES.TRACKER, f.outsider.address);
            return {
              call: () => f.fleet.connect(f.outsider).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, SERVER.id),
              error: "FleetRegistryNotTrackerModuleOwner",
              args: [SERVER.id, f.tracker.address, f.outsider.address],
            };
          },
        },
      ]);
    });
  });

  describe("roles come from the update registry", function () {
    it("lets an account enrol once granted ADMINISTRATOR_ROLE on the update registry, and not after it is revoked", async function () {
      const { fleet, registry, admin, outsider } = await loadFixture(fleetFixture);
      await expect(fleet.connect(outsider).enrolDevice(DEVICE_C))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR);

      await registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, outsider.address);
      await expect(fleet.connect(outsider).enrolDevice(DEVICE_C))
        .to.emit(fleet, "DeviceEnrolled")
        .withArgs(DEVICE_C.id, DEVICE_C.hardwareClass, DEVICE_C.network, DEVICE_C.region, DEVICE_C.publicKey);
      await expect(fleet.connect(outsider).suspendDevice(DEVICE_C.id, "test"))
        .to.emit(fleet, "DeviceSuspended")
        .withArgs(DEVICE_C.id, outsider.address, "test");

      await registry.connect(admin).revokeRole(ROLES.ADMINISTRATOR, outsider.address);
      await expect(fleet.connect(outsider).reinstateDevice(DEVICE_C.id))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR);
      const batch = buildDeviceBatch([DEVICE_A]);
      await expect(fleet.connect(outsider).enrolDeviceBatch(batch.root, 1, ""))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR);
      expect(await fleet.deviceStanding(DEVICE_C, 0, [])).to.equal(STANDING.Suspended);
    });

    it("lets an account register and retire tracker modules once granted TRACKER_ROLE, and not after it is revoked", async function () {
      const { fleet, registry, admin, outsider } = await loadFixture(fleetFixture);
      await registry.connect(admin).grantRole(ROLES.TRACKER, outsider.address);
      await expect(fleet.connect(outsider).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, ZeroHash))
        .to.emit(fleet, "TrackerModuleRegistered")
        .withArgs(FRESH.id, FRESH.signer, ZeroHash, FRESH.publicKey);
      await registry.connect(admin).revokeRole(ROLES.TRACKER, outsider.address);
      await expect(fleet.connect(outsider).retireTrackerModule(FRESH.id))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.TRACKER);
      expect(await fleet.trackerModule(FRESH.id)).to.deep.equal([FRESH.signer, ZeroHash]);
    });

    it("stops a tracker from registering once its role is revoked", async function () {
      const { fleet, registry, admin, tracker } = await loadFixture(fleetFixture);
      await registry.connect(admin).revokeRole(ROLES.TRACKER, tracker.address);
      await expect(fleet.connect(tracker).registerTrackerModule(FRESH.id, FRESH.signer, FRESH.publicKey, ZeroHash))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(tracker.address, ROLES.TRACKER);
    });

    it("honours only its own update registry's roles and hardware classes", async function () {
      const { fleet, outsider } = await loadFixture(fleetFixture);
      // A second deployment whose default admin and administrator is the outsider.
      const otherRegistry = (await ethers.deployContract("UpdateRegistry", [ADMIN_DELAY, outsider.address])) as unknown as UpdateRegistry;
      const otherFleet = (await ethers.deployContract("FleetRegistry", [await otherRegistry.getAddress()])) as unknown as FleetRegistry;
      expect(await otherFleet.updateRegistry()).to.equal(await otherRegistry.getAddress());
      // Administrator there, nobody here.
      await expect(fleet.connect(outsider).enrolDevice(DEVICE_C))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR);
      // Hardware class 1 exists in the first registry only.
      await expect(otherFleet.connect(outsider).enrolDevice(DEVICE_C))
        .to.be.revertedWithCustomError(otherFleet, "FleetRegistryUnknownHardwareClass")
        .withArgs(DEVICE_C.hardwareClass);
      await otherRegistry.connect(outsider).registerHardwareClass("board-1");
      await otherRegistry.connect(outsider).registerHardwareClass("board-2");
      await otherRegistry.connect(outsider).registerHardwareClass("board-3");
      await expect(otherFleet.connect(outsider).enrolDevice(DEVICE_C)).to.emit(otherFleet, "DeviceEnrolled");
      expect(await fleet.deviceStanding(DEVICE_C, 0, [])).to.equal(STANDING.Unknown);
    });
  });
});
