import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { deploymentPath, writeDeployment } from "../../../agent/chain/deployment";
import { startLedger, type Ledger } from "./ledger";
import { freePort } from "../../../scripts/lib/ports";
import { TcpProxy } from "./tcpProxy";
import { FirmwareProxy } from "./firmwareProxy";
import { CliProcess } from "./cliProcess";
import { Author } from "./author";
import { DeviceHandle } from "./device";
import { waitFor, type WaitOptions } from "./waitFor";

export interface WorldOptions {
  /** Tracker settings written to ota-ledger.json (pollMs, renoticeMs, livenessMs ...). */
  tracker?: Record<string, unknown>;
}

/**
 * One operator's installation in a temporary folder: a chain node with the registries, an
 * ota-ledger.json and deployments/localhost.json, and the agents started from there with the CLI
 * as child processes (`server start`, `tracker start`, `device run`). Between the agents and the
 * node sits a TCP proxy (the RPC link, to cut and restore); between the devices and the firmware
 * server an HTTP proxy (to tamper with what they receive). Everything listens on 127.0.0.1, on
 * free ports. `stop()` ends every process (their whole process groups), proxy and the node, and
 * removes the folder.
 */
export class World {
  readonly processes = new Set<CliProcess>();
  readonly author: Author;
  readonly trackerModule: { id: string; key: Wallet; url: string };
  serverProcess: CliProcess | undefined;
  trackerProcess: CliProcess | undefined;
  private trackerRegistered = false;

  private constructor(
    readonly ledger: Ledger,
    readonly dir: string,
    readonly rpcProxy: TcpProxy,
    readonly firmwareProxy: FirmwareProxy,
    readonly serverUrl: string,
    trackerPort: number,
  ) {
    this.author = new Author(ledger, dir);
    const key = new Wallet(keccak256(toUtf8Bytes(`e2e tracker module key ${dir}`)));
    this.trackerModule = { id: keccak256(toUtf8Bytes(`e2e tracker ${dir}`)).toLowerCase(), key, url: `http://127.0.0.1:${trackerPort}` };
  }

  static async start(o: WorldOptions = {}): Promise<World> {
    const ledger = await startLedger();
    const dir = mkdtempSync(path.join(tmpdir(), "ota-e2e-"));
    try {
      const [serverPort, trackerPort] = [await freePort(), await freePort()];
      await writeDeployment(deploymentPath(dir, "localhost"), ledger.deployment);
      const rpcProxy = await TcpProxy.start(ledger.port);
      const serverUrl = `http://127.0.0.1:${serverPort}`;
      const firmwareProxy = await FirmwareProxy.start(serverUrl);
      const world = new World(ledger, dir, rpcProxy, firmwareProxy, serverUrl, trackerPort);
      writeFileSync(
        path.join(dir, "ota-ledger.json"),
        JSON.stringify(
          {
            network: "localhost",
            chainId: 31337,
            rpcUrl: rpcProxy.url,
            serverUrl,
            storage: { kind: "embedded", path: "./server-ipfs" },
            server: { host: "127.0.0.1", port: serverPort, dataDir: "./server-data" },
            tracker: {
              host: "127.0.0.1",
              port: trackerPort,
              dataDir: "./tracker-data",
              moduleId: world.trackerModule.id,
              privateKey: world.trackerModule.key.privateKey,
              pollMs: 200,
              adoptionSampleMs: 3_600_000,
              ...o.tracker,
            },
          },
          null,
          2,
        ),
      );
      return world;
    } catch (err) {
      await ledger.stop();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Runs `ota-ledger <args>` from the installation's folder (the agents reach the node through the RPC proxy). */
  spawn(name: string, args: string[], env: Record<string, string> = {}): CliProcess {
    const p = new CliProcess(name, args, { cwd: this.dir, env });
    this.processes.add(p);
    return p;
  }

  /** `ota-ledger server start`, waited for until it listens; `directRpc`: it reaches the node itself, not through the RPC proxy. */
  async startServer(o: { directRpc?: boolean } = {}): Promise<CliProcess> {
    const p = this.spawn("firmware server", ["server", "start"], o.directRpc ? { OTA_RPC_URL: this.ledger.url } : {});
    await p.waitForLine(/firmware server on http/, { timeoutMs: 60_000 });
    this.serverProcess = p;
    return p;
  }

  /** `ota-ledger tracker start` (the module registered on the ledger first), waited for until it listens. */
  async startTracker(): Promise<CliProcess> {
    if (!this.trackerRegistered) {
      const { key, id } = this.trackerModule;
      await this.ledger.send(this.ledger.fleet.registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, ZeroHash));
      this.trackerRegistered = true;
    }
    const p = this.spawn("tracker", ["tracker", "start"]);
    await p.waitForLine(/tracker module 0x[0-9a-f]+ .* on http/, { timeoutMs: 60_000 });
    this.trackerProcess = p;
    return p;
  }

  /** A device identity, enrolled on the ledger unless told not to; its requests may be re-signed by the firmware proxy. */
  async device(label: string, hardwareClass = 1, o: { enrol?: boolean } = {}): Promise<DeviceHandle> {
    const d = new DeviceHandle(label, hardwareClass, path.join(this.dir, "devices"));
    if (o.enrol !== false) await this.ledger.send(this.ledger.fleet.enrolDevice(d.record));
    this.firmwareProxy.addDevice(d.id, d.key.privateKey);
    return d;
  }

  /** What a device's tracker section names: this installation's tracker module (or `url` in front of it). */
  deviceTracker(o: { url?: string; heartbeatMs?: number } = {}) {
    return {
      moduleId: this.trackerModule.id,
      publicKey: this.trackerModule.key.signingKey.compressedPublicKey,
      url: o.url ?? this.trackerModule.url,
      heartbeatMs: o.heartbeatMs ?? 500,
    };
  }

  /** `ota-ledger device run --device-config <file>`, reaching the firmware server through the proxy; waited for until it runs. */
  async startDevice(d: DeviceHandle, o: { serverUrl?: string } = {}): Promise<CliProcess> {
    const p = this.spawn(`device ${d.label}`, ["device", "run", "--device-config", d.configFile], { OTA_SERVER_URL: o.serverUrl ?? this.firmwareProxy.url });
    await p.waitForLine(/running 1 device agent/, { timeoutMs: 60_000 });
    return p;
  }

  /** GET on the tracker's API (its real URL). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- callers name the answer's shape, or take it loosely
  async trackerGet<T = any>(route: string): Promise<T> {
    const res = await fetch(new URL(route, this.trackerModule.url), { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET ${route}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** The tracker's view of one device (GET /v1/fleet/devices/:id). */
  trackerDevice(id: string) {
    return this.trackerGet<{
      device: {
        statuses: string[];
        installed: { component: string; version: string; releaseId: string }[];
        lastOutcome: string | null;
        lastCode: string | null;
        lastSeen: number | null;
      };
      reports: unknown[];
      deliveries: unknown[];
    }>(`/v1/fleet/devices/${id}`);
  }

  /** Recent output of every process, for failure messages. */
  context = (): string => [...this.processes].map((p) => p.output(40)).join("\n");

  /** waitFor with every process's output in the failure message. */
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, o: WaitOptions = {}): Promise<T> {
    return waitFor(what, probe, { timeoutMs: 30_000, ...o, context: this.context });
  }

  /** Stops one process (SIGTERM, then SIGKILL) and forgets it. */
  async stopProcess(p: CliProcess | undefined): Promise<void> {
    if (!p) return;
    await p.stop();
    this.processes.delete(p);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.kill()));
    this.processes.clear();
    await this.firmwareProxy.close();
    await this.rpcProxy.close();
    await this.ledger.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
