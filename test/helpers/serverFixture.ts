import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes, encodeBytes32String } from "ethers";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { catalogFixture, ACME_SIGNER, GLOBEX_SIGNER } from "./registryFixture";
import { FaultyStore } from "./faultyStore";
import { EmbeddedStore } from "../../agent/storage/embeddedStore";
import type { ContentStore } from "../../agent/storage/contentStore";
import { ServerDatabase } from "../../agent/server/serverDatabase";
import { LedgerGate } from "../../agent/server/ledgerGate";
import { startFirmwareServer, RunningFirmwareServer } from "../../agent/server/firmwareServer";
import { ContentKeyStore } from "../../agent/author/contentKeyStore";
import { prepareRelease, publishPrepared, ReleaseRequest } from "../../agent/author/publishRelease";
import { uploadArtifact } from "../../agent/author/uploadArtifact";
import { grantKeys } from "../../agent/author/grantKeys";
import { signAccountRequest } from "../../agent/crypto/requestSignature";
import type { DeviceIdentity } from "../../agent/consumer/downloadRelease";
import type { DeviceAgentOptions } from "../../agent/consumer/deviceAgent";
import type { DeviceRecord } from "../../agent/crypto/deviceTree";
import { fetchRelease } from "../../agent/chain/releaseEvents";
import { componentId } from "../../agent/core/release";
import type { UpdatePolicies } from "../../typechain-types";
import { TrackerModule, type TrackerModuleOptions } from "../../agent/tracker/trackerModule";
import { startTrackerHttp } from "../../agent/tracker/trackerHttp";

/** A device with its own key, enrolled (or not) on the fleet registry. */
export function makeDevice(label: string, hardwareClass: number): DeviceIdentity {
  const key = new Wallet(keccak256(toUtf8Bytes(`device key ${label}`)));
  const record: DeviceRecord = {
    id: keccak256(toUtf8Bytes(label)),
    publicKey: key.signingKey.compressedPublicKey,
    hardwareClass,
    network: encodeBytes32String("factory-floor"),
    region: encodeBytes32String("eu-west"),
  };
  return { privateKey: key.privateKey, credential: { record, batchId: 0, proof: [] } };
}

/** An image of `size` bytes whose content depends on `seed`. */
export function writeImage(dir: string, name: string, size: number, seed: number): string {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed * 17 + (i >> 12)) & 0xff;
  const file = path.join(dir, name);
  writeFileSync(file, b);
  return file;
}

/**
 * A registry with providers, hardware and components (catalogFixture), devices enrolled on the
 * fleet registry, and a running firmware server over a real store (embedded unless told
 * otherwise) wrapped in a FaultyStore (to play a compromised store), on 127.0.0.1.
 */
export async function serverFixture(
  openStore: (dir: string) => Promise<ContentStore> = (dir) => EmbeddedStore.open({ directory: path.join(dir, "ipfs") }),
  o: { withPolicies?: boolean; now?: () => number } = {},
) {
  const base = await catalogFixture();
  const { registry, fleet, admin } = base;
  const dir = mkdtempSync(path.join(tmpdir(), "ota-server-"));
  const devices = {
    a: makeDevice("device-a", 1),
    b: makeDevice("device-b", 1),
    gateway: makeDevice("gateway-1", 3), // hardware no acme release supports
    suspended: makeDevice("device-suspended", 1),
    stranger: makeDevice("device-never-enrolled", 1),
  };
  for (const d of [devices.a, devices.b, devices.gateway, devices.suspended]) await fleet.connect(admin).enrolDevice(d.credential.record);
  await fleet.connect(admin).suspendDevice(devices.suspended.credential.record.id, "stolen");

  const store = new FaultyStore(await openStore(dir));
  const db = new ServerDatabase(path.join(dir, "server.db"));
  // UpdatePolicies beside the registry, as deployed: the server then asks the attached policies too.
  const policies = o.withPolicies ? ((await ethers.deployContract("UpdatePolicies", [await registry.getAddress()])) as unknown as UpdatePolicies) : undefined;
  const gate = new LedgerGate(registry, fleet, base.domain, 0, policies);
  // `now`: the server's clock, when a test moves time for the whole system (a device's update window).
  const server: RunningFirmwareServer = await startFirmwareServer({ gate, store, db, pollMs: 100, now: o.now });
  const keys = new ContentKeyStore(path.join(dir, "keys"));

  /** Packages, publishes, submits and grants a release as its author would. */
  async function release(req: ReleaseRequest, opts: { author?: typeof base.acmeAuthor; signer?: Wallet; grant?: DeviceIdentity[]; upload?: boolean } = {}) {
    const author = opts.author ?? base.acmeAuthor;
    const signer = opts.signer ?? (author === base.globexAuthor ? GLOBEX_SIGNER : ACME_SIGNER);
    const prepared = await prepareRelease({ registry, domain: base.domain, sender: author, releaseSigner: signer }, req, path.join(dir, "artifacts"));
    await publishPrepared({ registry, sender: author, keys }, prepared);
    if (opts.upload !== false) await uploadArtifact({ serverUrl: server.url, author }, prepared.releaseId, prepared.artifactFile);
    if (opts.grant?.length) {
      await grantKeys({ registry, fleet, domain: base.domain, author, keys, serverUrl: server.url }, prepared.releaseId, {
        deviceIds: opts.grant.map((d) => d.credential.record.id),
      });
    }
    const ledger = (await fetchRelease(registry, base.domain, prepared.releaseId))!;
    return { ...prepared, ledger };
  }

  /** The signed headers of a submission of `releaseId` by `author` (an author of acme by default), as uploadArtifact sends them. */
  function submissionHeaders(
    releaseId: string,
    author: { address: string; signMessage(m: string): Promise<string> } = base.acmeAuthor,
    serverUrl = server.url,
  ) {
    return signAccountRequest(author, { audience: serverUrl, method: "POST", path: `/v1/releases/${releaseId.toLowerCase()}/artifact` });
  }

  async function close() {
    await server.close();
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }

  return { ...base, dir, devices, store, db, gate, server, keys, release, submissionHeaders, close, ethers, policies };
}

/**
 * A device agent's options on the fixture's chain (its policies too, when deployed): the
 * bootloader, a ledger age no test reaches, a health check that passes, in `<f.dir>/<name>`.
 */
export function deviceAgentOptions(
  f: Awaited<ReturnType<typeof serverFixture>>,
  device: DeviceIdentity,
  name: string,
  extra: Partial<DeviceAgentOptions> = {},
): DeviceAgentOptions {
  return {
    dataDir: path.join(f.dir, name),
    device,
    serverUrl: f.server.url,
    chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, policies: f.policies, domain: f.domain, fromBlock: 0 },
    components: [componentId("acme.bootloader")],
    policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
    healthCheck: async () => true,
    blockedRetry: { baseMs: 1, maxMs: 1 }, // retryPending retries a blocked delivery at once in tests
    download: { startJitterMs: 0 }, // one device at a time: no fleet to spread
    ...extra,
  };
}

/**
 * A registered server tracker module following the fixture's in-process chain, with its HTTP API
 * on 127.0.0.1 (client-module tests: devices report to it and take its notices).
 */
export async function trackerBeside(f: Awaited<ReturnType<typeof serverFixture>>, label: string, extra: Partial<TrackerModuleOptions> = {}) {
  const key = new Wallet(keccak256(toUtf8Bytes(`${label} key`)));
  const id = keccak256(toUtf8Bytes(label));
  await f.fleet.connect(f.tracker).registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, ethers.ZeroHash);
  const tracker = new TrackerModule({
    chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, policies: f.policies, domain: f.domain, fromBlock: 0 },
    module: { id, privateKey: key.privateKey },
    dataDir: path.join(f.dir, `tracker-${id.slice(2, 10)}`),
    pollMs: 100,
    ...extra,
  });
  await tracker.start();
  const http = await startTrackerHttp(tracker);
  return {
    tracker,
    http,
    key,
    id,
    /** What a device's configuration names as its tracker. */
    deviceTracker: { moduleId: id, publicKey: key.signingKey.compressedPublicKey, url: http.url },
    async stop() {
      await http.close();
      await tracker.stop();
    },
  };
}
