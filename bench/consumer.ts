/**
 * The firmware consumer end to end on this machine: a device agent takes a release of a 256 MiB
 * image from the firmware server (embedded IPFS store, 127.0.0.1, in a process of its own): ledger
 * checks, download with every chunk verified against the ledger's root, key unwrap, decryption
 * into the inactive slot with the plaintext hash checked, trial boot (the slot re-hashed) and
 * confirmation. Printed beside the OpenSSL ceiling measured in the same run, with peak memory.
 *
 *   npm run bench:consumer                          256 MiB image
 *   BENCH_SIZE_MIB=64 npm run bench:consumer        another size in MiB
 *   BENCH_JSON=1 npm run bench:consumer             JSON
 *
 * Fleet mode (issue 17): N devices download a small release at once from the one server process,
 * as devices do (chunk list, artifact with every chunk verified, wrapped key checked), each
 * retrying a failed round up to twice as the device agent does, after its start jitter:
 *
 *   BENCH_CONCURRENCY=1000 npm run bench:consumer   1,000 devices, a 256 KiB image
 *   BENCH_SIZE_KIB=1024 BENCH_JITTER_MS=0 ...       another image size; no start jitter (default 2,000 ms)
 *
 * Three processes, as in a deployment: a Hardhat node (its own process, 127.0.0.1, a free port),
 * the firmware server (its own process: bench/lib/parts.ts) and the device(s) in this
 * one, so that neither the chain's nor the server's work and memory (and garbage collection)
 * count as the device's. The server's CPU time and peak memory are printed.
 */
// First: Node 20 lacks Promise.withResolvers, which Helia calls.
import "../agent/runtime/node20";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HDNodeWallet, JsonRpcProvider, Network, NonceManager, SigningKey, Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { FleetRegistry__factory, UpdateRegistry__factory, type FleetRegistry, type UpdateRegistry } from "../typechain-types";
import { registryDomain } from "../agent/crypto/releaseSignature";
import { buildDeviceBatch, type DeviceRecord } from "../agent/crypto/deviceTree";
import type { DeviceCredential } from "../agent/crypto/deviceCredential";
import { ContentKeyStore } from "../agent/author/contentKeyStore";
import { prepareRelease, publishPrepared } from "../agent/author/publishRelease";
import { uploadArtifact } from "../agent/author/uploadArtifact";
import { grantKeys } from "../agent/author/grantKeys";
import { DeviceAgent } from "../agent/consumer/deviceAgent";
import { downloadFromSources, startJitter } from "../agent/consumer/deliverySources";
import { fetchRelease } from "../agent/chain/releaseEvents";
import { componentId } from "../agent/core/release";
import { reportCodeOf } from "../agent/core/updateErrors";
import { median, opensslMBps, peakRssMiB, round } from "./lib/measure";
import { startPart, type ServerPart } from "./lib/parts";
import { startLocalChain, type LocalChain } from "../scripts/lib/localChain";
import { freePort } from "../scripts/lib/ports";

const MiB = 1024 * 1024;
const MNEMONIC = "test test test test test test test test test test test junk"; // Hardhat's node's funded accounts
const env = (name: string, fallback: number) => (process.env[name] === undefined || process.env[name] === "" ? fallback : Number(process.env[name]));

async function main() {
  const json = process.env.BENCH_JSON === "1";
  const concurrency = env("BENCH_CONCURRENCY", 0);
  const size = concurrency > 0 ? env("BENCH_SIZE_KIB", 256) * 1024 : env("BENCH_SIZE_MIB", 256) * MiB;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-bench-consumer-"));
  let chain: LocalChain | undefined;
  let provider: JsonRpcProvider | undefined;
  let server: ServerPart | undefined;
  try {
    chain = await startLocalChain({ port: await freePort() });
    provider = new JsonRpcProvider(chain.url, Network.from(31337), { staticNetwork: true });
    const account = (i: number) => new NonceManager(HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(provider!));
    const admin = account(0);
    const authorWallet = HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0/1").connect(provider);
    const author = new NonceManager(authorWallet);
    const adminAddress = await admin.getAddress();
    const registry = (await (await new UpdateRegistry__factory(admin).deploy(3 * 24 * 3600, adminAddress)).waitForDeployment()) as unknown as UpdateRegistry;
    const fleet = (await (await new FleetRegistry__factory(admin).deploy(await registry.getAddress())).waitForDeployment()) as unknown as FleetRegistry;
    const domain = registryDomain(31337, await registry.getAddress());
    await (await registry.registerProvider("Bench")).wait();
    await (await registry.addProviderSigner(1, authorWallet.address)).wait();
    await (await registry.registerAuthor(authorWallet.address, 1)).wait();
    await (await registry.registerHardwareClass("bench-board")).wait();
    await (await registry.registerComponent("bench.firmware", 1)).wait();

    // The devices: one enrolled singly (the end-to-end run), or a batch (fleet mode).
    const devices: { privateKey: string; credential: DeviceCredential }[] = [];
    const recordOf = (name: string, publicKey: string): DeviceRecord => ({
      id: keccak256(toUtf8Bytes(name)),
      publicKey,
      hardwareClass: 1,
      network: encodeBytes32String("bench"),
      region: encodeBytes32String("bench"),
    });
    if (concurrency > 0) {
      const keys = Array.from({ length: concurrency }, (_, i) => new SigningKey(keccak256(toUtf8Bytes(`bench device key ${i}`))));
      const records = keys.map((k, i) => recordOf(`bench device ${i}`, k.compressedPublicKey));
      const batch = buildDeviceBatch(records);
      const receipt = await (await fleet.enrolDeviceBatch(batch.root, records.length, "bench:consumer")).wait();
      const batchId = Number(receipt!.logs.map((l) => fleet.interface.parseLog(l)).find((p) => p?.name === "DeviceBatchEnrolled")!.args.batchId);
      keys.forEach((k, i) => devices.push({ privateKey: k.privateKey, credential: { record: records[i], batchId, proof: batch.proofs[i] } }));
    } else {
      const key = Wallet.createRandom();
      const record = recordOf("bench device", key.signingKey.compressedPublicKey);
      await (await fleet.enrolDevice(record)).wait();
      devices.push({ privateKey: key.privateKey, credential: { record, batchId: 0, proof: [] } });
    }

    server = await startPart("server", {
      rpcUrl: chain.url,
      chainId: 31337,
      registry: await registry.getAddress(),
      fleet: await fleet.getAddress(),
      dir: path.join(dir, "server"),
    });
    // The author's side, not measured: a random image, packaged, published, submitted, granted.
    const image = path.join(dir, "image.bin");
    const handle = await fs.open(image, "w");
    const block = randomBytes(Math.min(MiB, size));
    for (let o = 0; o < size; o += block.length) await handle.write(block, 0, Math.min(block.length, size - o));
    await handle.close();
    const keys = new ContentKeyStore(path.join(dir, "keys"));
    const authorRegistry = registry.connect(author);
    const prepared = await prepareRelease(
      { registry: authorRegistry, domain, sender: author, releaseSigner: authorWallet },
      { component: "bench.firmware", version: "1.0.0", file: image, hardware: ["1"], depends: [] },
      dir,
    );
    await publishPrepared({ registry: authorRegistry, sender: author, keys }, prepared);
    await uploadArtifact({ serverUrl: server.url, author: authorWallet }, prepared.releaseId, prepared.artifactFile);
    await grantKeys(
      { registry, fleet, domain, author: authorWallet, keys, serverUrl: server.url },
      prepared.releaseId,
      concurrency > 0 ? { credentials: devices.map((d) => d.credential), allEligible: true } : { deviceIds: [devices[0].credential.record.id] },
    );
    await fs.rm(image);
    await fs.rm(prepared.artifactFile);

    const figures =
      concurrency > 0
        ? await fleetDownloads(server, devices, { registry, domain, releaseId: prepared.releaseId, dir, size })
        : await endToEnd(server, devices[0], { provider, registry, fleet, domain, releaseId: prepared.releaseId, dir, size });
    if (json) console.log(JSON.stringify(figures, null, 2));
    else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(76)} ${v}`);
  } finally {
    await server?.stop();
    provider?.destroy();
    await chain?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** One device takes the release end to end, beside the OpenSSL ceiling. */
async function endToEnd(
  server: ServerPart,
  device: { privateKey: string; credential: DeviceCredential },
  o: {
    provider: JsonRpcProvider;
    registry: UpdateRegistry;
    fleet: FleetRegistry;
    domain: ReturnType<typeof registryDomain>;
    releaseId: string;
    dir: string;
    size: number;
  },
) {
  const baseline = peakRssMiB();
  const phases: Record<string, number> = {};
  let mark = process.hrtime.bigint();
  const agent = await DeviceAgent.open({
    dataDir: path.join(o.dir, "device"),
    device,
    serverUrl: server.url,
    chain: { provider: o.provider, registry: o.registry, fleet: o.fleet, domain: o.domain, fromBlock: 0 },
    components: [componentId("bench.firmware")],
    policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
    download: { startJitterMs: 0 }, // one device: nothing to spread
    healthCheck: async () => true,
    onPhase: (phase) => {
      const now = process.hrtime.bigint();
      phases[phase] = Number(now - mark) / 1e9;
      mark = now;
    },
  });
  const cpuBefore = (await server.figures()).process.cpuS;
  const ownBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  mark = started;
  const outcome = await agent.considerRelease(o.releaseId, "bench");
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const serverAfter = (await server.figures()).process;
  const own = process.cpuUsage(ownBefore);
  if (outcome.outcome !== "confirmed") throw new Error(`the device did not confirm the release: ${outcome.code}`);

  const aes = opensslMBps("aes-256-gcm");
  const sha = opensslMBps("sha256");
  // Per byte: one AES-GCM pass and three SHA-256 passes (chunk leaf on arrival, plaintext hash
  // into the slot, the slot re-hashed at the trial boot).
  const ceiling = aes && sha ? 1 / (1 / aes + 3 / sha) : null;
  const mbps = (s: number) => Number((o.size / MiB / s).toFixed(1));
  return {
    imageMiB: o.size / MiB,
    "end to end (checks, download+verify, decrypt+install, trial, confirm) MiB/s": mbps(seconds),
    "download + per-chunk verification s": Number((phases.downloaded ?? 0).toFixed(2)),
    "key unwrap + decrypt into the slot + hash s": Number(((phases.decrypted ?? 0) + (phases.installing ?? 0)).toFixed(2)),
    "trial boot (slot re-hashed) + confirm s": Number(((phases.trial ?? 0) + (phases.confirmed ?? 0)).toFixed(2)),
    "openssl aes-256-gcm MiB/s": aes && Number(aes.toFixed(1)),
    "openssl sha256 MiB/s": sha && Number(sha.toFixed(1)),
    "openssl ceiling for aes + 3 x sha256 MiB/s": ceiling && Number(ceiling.toFixed(1)),
    "end to end / ceiling": ceiling && Number((mbps(seconds) / ceiling).toFixed(2)),
    "firmware server: its own process, CPU s during the run": round(serverAfter.cpuS - cpuBefore, 2),
    "device process: CPU s during the run": round((own.user + own.system) / 1e6, 2),
    "peak RSS MiB before the device": baseline,
    "peak RSS MiB after the device": peakRssMiB(),
    "peak RSS MiB of the firmware server process": serverAfter.peakRssMiB,
  };
}

/**
 * N devices download the release at once from the one server process, as the device agent does:
 * a start jitter, then rounds of downloadFromSources (chunk list, artifact, key), a failed round
 * retried after a second, at most three rounds, with the fleet's idle timeout (10 s, as the demo's).
 */
async function fleetDownloads(
  server: ServerPart,
  devices: { privateKey: string; credential: DeviceCredential }[],
  o: { registry: UpdateRegistry; domain: ReturnType<typeof registryDomain>; releaseId: string; dir: string; size: number },
) {
  const release = await fetchRelease(o.registry, o.domain, o.releaseId, 0);
  if (!release) throw new Error("the release is not on the ledger");
  const jitterMs = env("BENCH_JITTER_MS", 2000);
  const timeoutMs = env("BENCH_TIMEOUT_MS", 10_000);
  await fs.mkdir(path.join(o.dir, "fleet"), { recursive: true });
  const refusals: Record<string, number> = {};
  const times: number[] = [];
  let failed = 0;
  const cpuBefore = (await server.figures()).process.cpuS;
  const started = performance.now();
  await Promise.all(
    devices.map(async (device, i) => {
      await startJitter(jitterMs);
      for (let round = 1; ; round++) {
        try {
          await downloadFromSources([{ kind: "server", url: server.url }], {
            device,
            installed: [],
            release,
            artifactFile: path.join(o.dir, "fleet", `${i}.otae`),
            timeoutMs,
          });
          times.push(performance.now() - started);
          return;
        } catch (err) {
          const code = reportCodeOf(err);
          refusals[code] = (refusals[code] ?? 0) + 1;
          if (round >= 3) {
            failed++;
            return;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }),
  );
  const allDone = performance.now() - started;
  const serverAfter = (await server.figures()).process;
  const sorted = [...times].sort((a, b) => a - b);
  return {
    devices: devices.length,
    imageKiB: o.size / 1024,
    "start jitter ms (uniform in [0, n])": jitterMs,
    "idle timeout ms": timeoutMs,
    "all done s": round(allDone / 1000, 2),
    "device done s, p50 / p99": `${round(median(sorted) / 1000, 2)} / ${round((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0) / 1000, 2)}`,
    "devices that did not complete in 3 rounds": failed,
    "failed rounds by code (retried)": JSON.stringify(refusals),
    "firmware server CPU s": round(serverAfter.cpuS - cpuBefore, 2),
    "peak RSS MiB of the firmware server process": serverAfter.peakRssMiB,
    "peak RSS MiB of this process (the devices)": peakRssMiB(),
  };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
