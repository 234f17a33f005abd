/**
 * npm start: the main job on embedded defaults, with no external service.
 *
 * Starts a local Hardhat chain on 127.0.0.1, deploys the registry, UpdatePolicies and
 * StatusAnchors, starts the firmware server on the embedded IPFS store, the status tracker (a
 * server module with its dashboard, and an intermediate module for the second network) and a
 * simulated fleet of 50 devices on two networks and three hardware classes. Then it plays the
 * story (scripts/demo/story.ts): a bootloader and a firmware that depends on it, a staged rollout
 * in two waves, a tampered download refused, a bad release rolled back and its rollout halted by
 * the ledger, an auditor's revocation and vulnerability flag with the devices affected, and an
 * anchor of the fleet's state. It ends with a summary table and keeps everything up (the
 * dashboard's URL printed) until Ctrl-C. `npm start -- --once` exits after the summary, with
 * status 0 only if every step behaved as expected.
 *
 * OTA_DEMO_LOG=<file> writes every device's log there at the end, for a closer look.
 * `npm start -- --mqtt`: plant-1's devices report to hq over Debian's mosquitto, started here on
 * 127.0.0.1 with the files `tracker mqtt-config` writes (ADR 0015), instead of HTTP.
 *
 * Ports: the chain's from OTA_RPC_URL (default 8545), the firmware server's OTA_SERVER_PORT
 * (8600), the tracker's OTA_TRACKER_PORT (8700); all on 127.0.0.1.
 */
// First: Node 20 lacks Promise.withResolvers, which Helia calls.
import "../agent/runtime/node20";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { startLocalChain } from "./lib/localChain";
import { setUpLedger } from "./demo/ledgerSetup";
import { agentChain, startHqBroker, startServices } from "./demo/services";
import { deviceRecord, enrolFleet, planFleet, startFleet } from "./demo/simulatedFleet";
import { playStory } from "./demo/story";
import { StoryLog } from "./demo/storyLog";

const FLEET = { perNetwork: { "plant-1": 30, "plant-2": 20 } } as const;

async function main(): Promise<boolean> {
  const once = process.argv.includes("--once");
  // Reports over MQTT for the hq module's network (ADR 0015): Debian's mosquitto, started here.
  const mqtt = process.argv.includes("--mqtt");
  process.env.HARDHAT_NETWORK = process.env.HARDHAT_NETWORK ?? "localhost";
  const hre: HardhatRuntimeEnvironment = (await import("hardhat")).default;
  const url = new URL((hre.network.config as { url: string }).url);
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost") {
    throw new Error(`npm start runs its own chain on 127.0.0.1; OTA_RPC_URL points at ${url.host}. Unset it or use 127.0.0.1`);
  }
  const serverPort = port("OTA_SERVER_PORT", 8600);
  const trackerPort = port("OTA_TRACKER_PORT", 8700);
  for (const [p, env] of [
    [serverPort, "OTA_SERVER_PORT"],
    [trackerPort, "OTA_TRACKER_PORT"],
  ] as const) {
    if (p !== 0 && (await isListening(p))) throw new Error(`something already listens on 127.0.0.1:${p}: stop it, or choose another port with ${env}=<port>`);
  }
  await hre.run("compile", { quiet: true });

  const log = new StoryLog();
  const chain = await startLocalChain({ port: Number(url.port || 8545) });
  const dir = await mkdtemp(path.join(os.tmpdir(), "ota-ledger-demo-"));
  const stops: (() => Promise<void>)[] = [];
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  try {
    // A block a second, as a real chain makes them: wave start times pass, and devices' ledger views stay fresh.
    await hre.ethers.provider.send("evm_setIntervalMining", [1000]);
    log.begin("ledger", `a local chain at ${chain.url} (Hardhat, chain id 31337); the administrator deploys and sets up the catalog`);
    const ledger = await setUpLedger(hre, log);
    const agents = agentChain(ledger, chain.url);
    stops.push(async () => agents.provider.destroy());

    log.begin("services", "the firmware server, the status tracker and a fleet of 50 devices start");
    const services = await startServices(ledger, agents, { dir, serverPort, trackerPort });
    stops.push(() => services.close());
    log.note(`firmware server  ${services.serverUrl} (embedded IPFS store in ${services.storeDir})`);
    log.note(`tracker          ${services.hq.http.url} (server module "hq"); dashboard ${services.hq.http.url}`);
    log.note(`gateway          ${services.gateway.http.url} (intermediate module for plant-2, reports up to hq)`);
    const devices = planFleet(FLEET, path.join(dir, "fleet"));
    if (process.env.OTA_DEMO_LOG) {
      const file = process.env.OTA_DEMO_LOG;
      stops.push(() => writeFile(file, devices.map((d) => [`# ${d.name} ${d.id}`, ...d.log].join("\n")).join("\n\n") + "\n"));
    }
    await enrolFleet(ledger.fleet, ledger.actors.admin, devices);
    log.note(
      `✓ administrator enrols ${devices.length} devices: ${FLEET.perNetwork["plant-1"]} on plant-1, ${FLEET.perNetwork["plant-2"]} on plant-2, hardware rev-a, rev-b, rev-c in turn`,
    );
    const hqMqtt = mqtt
      ? await startHqBroker(
          ledger,
          services,
          devices.filter((d) => d.network === "plant-1").map((d) => ({ id: deviceRecord(d).id, publicKey: deviceRecord(d).publicKey })),
        )
      : undefined;
    if (hqMqtt) log.note(`mqtt broker      ${hqMqtt} (mosquitto; plant-1's devices report to hq over it)`);
    const tampered = devices[0];
    const runner = await startFleet({
      chain: agents,
      devices,
      stateDir: path.join(dir, "fleet"),
      serverUrlOf: (d) => (d === tampered ? services.mirror.url : services.serverUrl),
      trackers: {
        "plant-1": { key: ledger.modules.server, url: services.hq.http.url, ...(hqMqtt ? { mqtt: hqMqtt } : {}) },
        "plant-2": { key: ledger.modules.gateway, url: services.gateway.http.url },
      },
      pinnedSigners: [ledger.actors.releaseKey.address],
    });
    // Stopped, then settled: an update or report under way finishes before the folder goes.
    stops.push(async () => {
      await runner.stop();
      await Promise.all(runner.agents.map((a) => a.settled()));
    });
    log.note(`✓ ${devices.length} device agents run (A/B slots, self-test health check), each reporting to its network's tracker module`);

    await playStory({ ledger, chain: agents, services, devices, runner, tampered, dir, waveGapSeconds: 30 }, log);

    console.log("\n== summary\n");
    console.log(log.summary());
    if (!once) {
      console.log(`\nThe chain (${chain.url}), the firmware server (${services.serverUrl}) and the tracker stay up.`);
      console.log(`Dashboard: ${services.hq.http.url}   Ctrl-C stops everything.`);
      await stopped;
      console.log("\nstopping");
    }
    return log.allOk;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await chain.stop();
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

function port(env: string, fallback: number): number {
  const text = process.env[env];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${env}="${text}" is not a port: give a whole number from 0 to 65535`);
  return value;
}

function isListening(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port: p });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err) => {
    console.error(`npm start failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
