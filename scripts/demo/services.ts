import path from "node:path";
import { JsonRpcProvider, Network, encodeBytes32String } from "ethers";
import { EmbeddedStore } from "../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../agent/server/serverDatabase";
import { LedgerGate } from "../../agent/server/ledgerGate";
import { startFirmwareServer } from "../../agent/server/firmwareServer";
import { TrackerModule } from "../../agent/tracker/trackerModule";
import { startTrackerHttp, type RunningTrackerHttp } from "../../agent/tracker/trackerHttp";
import { FleetRegistry__factory, StatusAnchors__factory, UpdatePolicies__factory, UpdateRegistry__factory } from "../../typechain-types";
import type { DemoLedger } from "./ledgerSetup";
import { startCompromisedMirror, type CompromisedMirror } from "./compromisedMirror";
import { startTrackerMqtt } from "../../agent/tracker/mqttIntake";
import { startMosquitto } from "../lib/mosquitto";

/** The contracts as the agents see them: over their own JSON-RPC connection to the chain, as in production. */
export function agentChain(l: DemoLedger, rpcUrl: string) {
  const provider = new JsonRpcProvider(rpcUrl, Network.from(l.deployment.chainId), { staticNetwork: true, pollingInterval: 1000 });
  return {
    provider,
    registry: UpdateRegistry__factory.connect(l.deployment.updateRegistry, provider),
    fleet: FleetRegistry__factory.connect(l.deployment.fleetRegistry, provider),
    policies: UpdatePolicies__factory.connect(l.deployment.updatePolicies!, provider),
    anchors: StatusAnchors__factory.connect(l.deployment.statusAnchors!, provider),
    lens: l.deployment.updateCheckLens,
    domain: l.domain,
    fromBlock: l.deployment.deployedAtBlock,
  };
}
export type AgentChain = ReturnType<typeof agentChain>;

export interface Services {
  serverUrl: string;
  /** The firmware server's ledger gate (its entitlement reads are counted for bench:e2e). */
  gate: LedgerGate;
  storeDir: string;
  /** A compromised mirror of the firmware server, for the device whose download is tampered with. */
  mirror: CompromisedMirror;
  hq: { tracker: TrackerModule; http: RunningTrackerHttp };
  gateway: { tracker: TrackerModule; http: RunningTrackerHttp };
  close(): Promise<void>;
}

/**
 * `npm start -- --mqtt` (ADR 0015): Debian's mosquitto on 127.0.0.1, its logins and ACL for the
 * hq module's devices as `tracker mqtt-config` writes them, and the module's MQTT intake beside
 * its HTTP API. Stopped with the services.
 */
export async function startHqBroker(l: DemoLedger, s: Services, devices: { id: string; publicKey: string }[]): Promise<string> {
  const broker = await startMosquitto({ moduleId: l.modules.server.id, modulePrivateKey: l.modules.server.privateKey, devices });
  try {
    const intake = await startTrackerMqtt(s.hq.tracker, { url: broker.url });
    const close = s.close;
    s.close = async () => {
      await close(); // the devices and trackers first, then what carried their messages
      await intake.close();
      await broker.close();
    };
  } catch (err) {
    await broker.close();
    throw err;
  }
  return broker.url;
}

/**
 * Act 2: the firmware server on the embedded IPFS store, the status tracker's server module
 * ("hq", with the dashboard) and the second network's gateway (an intermediate module that
 * relays its devices' reports up and the decisions down). The server module posts failure totals
 * to the staged rollout with the tracker operator's account.
 */
export async function startServices(l: DemoLedger, chain: AgentChain, o: { dir: string; serverPort: number; trackerPort: number }): Promise<Services> {
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const storeDir = path.join(o.dir, "ipfs");
    const store = await EmbeddedStore.open({ directory: storeDir });
    closers.push(() => store.close());
    const db = new ServerDatabase(path.join(o.dir, "server.db"));
    closers.push(() => db.close());
    const gate = new LedgerGate(chain.registry, chain.fleet, chain.domain, chain.fromBlock, chain.policies, { lens: chain.lens });
    const server = await startFirmwareServer({ gate, store, db, port: o.serverPort, pollMs: 1000 });
    closers.push(() => server.close());
    const mirror = await startCompromisedMirror({
      store,
      db,
      gate: new LedgerGate(chain.registry, chain.fleet, chain.domain, chain.fromBlock, chain.policies, { lens: chain.lens }),
    });
    closers.push(() => mirror.close());

    const common = {
      dataDir: "",
      pollMs: 1000,
      confirmations: 0,
      adoptionSampleMs: 2000,
      upstreamMs: 1000,
      livenessMs: 60_000,
      renoticeMs: 5000,
      intakeWorkers: 0,
    };
    const hqTracker = new TrackerModule({
      ...common,
      chain,
      module: { id: l.modules.server.id, privateKey: l.modules.server.privateKey },
      dataDir: path.join(o.dir, "tracker-hq"),
      ledgerAccount: l.actors.trackerOperator,
      failureReportMs: 1000,
      anchorMs: 0, // the story anchors once, at the end
    });
    await hqTracker.start();
    closers.push(() => hqTracker.stop());
    const hqHttp = await startTrackerHttp(hqTracker, { port: o.trackerPort });
    closers.push(() => hqHttp.close());

    const gatewayTracker = new TrackerModule({
      ...common,
      chain,
      module: { id: l.modules.gateway.id, privateKey: l.modules.gateway.privateKey },
      parent: { id: l.modules.server.id, url: hqHttp.url },
      dataDir: path.join(o.dir, "tracker-gateway"),
      networks: [encodeBytes32String("plant-2")],
    });
    await gatewayTracker.start();
    closers.push(() => gatewayTracker.stop());
    const gatewayHttp = await startTrackerHttp(gatewayTracker, { port: 0 });
    closers.push(() => gatewayHttp.close());

    return {
      serverUrl: server.url,
      gate,
      storeDir,
      mirror,
      hq: { tracker: hqTracker, http: hqHttp },
      gateway: { tracker: gatewayTracker, http: gatewayHttp },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
