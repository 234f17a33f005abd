import { promises as fs } from "node:fs";
import { brokerEndpoint } from "../../net/mqttConnection";
import path from "node:path";
import type { Command } from "commander";
import { Wallet, ZeroHash, id as roleId } from "ethers";
import type { CliContext } from "../context";
import { writeNewKeyFile } from "../newKeyFile";
import { lockFolder } from "../../files/pidLock";
import { grantRoleTo } from "./role";
import { InputError, OtaError } from "../../core/errors";
import { trackerModuleOf } from "../../chain/trackerModules";
import { backupTracker, restoreTracker } from "../../tracker/backup";
import { TrackerModule } from "../../tracker/trackerModule";
import { FleetStore } from "../../tracker/store";
import { resyncLedger } from "../../tracker/ledgerPosition";
import { startTrackerHttp, type RunningTrackerHttp } from "../../tracker/trackerHttp";
import { startTrackerMqtt, type RunningTrackerMqtt } from "../../tracker/mqttIntake";
import { brokerConfigFiles } from "../../tracker/mqttBrokerConfig";
import { DEFAULT_TOPIC_PREFIX } from "../../core/reportTopics";
import { writeFileAtomic } from "../../files/atomicFile";
import { requireTrackerModule, trackerModuleSettings, type OtaConfig, type TrackerModuleSettings } from "../config";
import { parseId, parseIdOrLabel } from "../parse";
import { describeMs, formatBytes } from "../table";
import { confirm, describeTx } from "../transactions";
import { ReleaseBundles__factory } from "../../chain/contracts";

const TRACKER_ROLE = roleId("TRACKER_ROLE");

/**
 * The status tracker (X.1368 clause 8.2, ADR 0004): its module key, its registration on the
 * ledger, running it, backing it up (`tracker ...`). Reading the fleet's status from it is
 * `fleet status|list|outdated|vulnerable` (commands/fleet/status.ts).
 */
export function register(program: Command, ctx: CliContext): void {
  const tracker = program.command("tracker").description("the status tracker: its module key, its registration on the ledger, running it, backing it up");

  tracker
    .command("keygen <file>")
    .description("make a new tracker-module key in <file> (mode 0600; never overwrites); prints its signer and public key")
    .action(async (file: string) => {
      const { keyFile, wallet } = await writeNewKeyFile(ctx.io.cwd, file);
      const publicKey = wallet.signingKey.compressedPublicKey;
      ctx.output(
        { keyFile, signer: wallet.address, publicKey },
        `tracker-module key written to ${keyFile}\n  signer      ${wallet.address}\n  public key  ${publicKey}\n` +
          `set tracker.keyFile (or OTA_TRACKER_KEY_FILE) to it, then run \`ota-ledger tracker register\``,
      );
    });

  tracker
    .command("grant <address>")
    .description("grant TRACKER_ROLE (registering tracker modules) to an account; needs an administrator key")
    .action(async (text: string) => grantRoleTo(ctx, "tracker", text));

  tracker
    .command("register")
    .description("register this tracker module (tracker.moduleId and its key) on the ledger; needs a key with TRACKER_ROLE")
    .option("--parent <id>", "the module above this one (an intermediate module); overrides tracker.parent.id")
    .option("--no-parent", "register a server module, whatever tracker.parent says")
    .action(async (o: { parent?: string | boolean }) => registerModule(ctx, o.parent));

  tracker
    .command("start")
    .description("run this tracker module: follow the ledger, take device reports, serve the API and dashboard (Ctrl-C stops)")
    .action(async () => startModule(ctx));

  tracker
    .command("mqtt-config <dir>")
    .description(
      "write a mosquitto configuration for this module's devices into <dir>: mosquitto.conf, passwd (a login per active device) and acl (each device its own topics); again whenever devices change",
    )
    .option("--host <host>", "where the broker listens (default: tracker.mqtt.url's host, else 127.0.0.1)")
    .option("--port <port>", "its port (default: tracker.mqtt.url's port, else 1883)")
    .option("--run-as <user>", "the user mosquitto runs as once it drops root (its `user` setting); it must be able to read the files")
    .action(async (dir: string, o: { host?: string; port?: string; runAs?: string }) => writeBrokerConfig(ctx, dir, o));

  tracker
    .command("backup <file>")
    .description("copy this module's fleet database and ledger checkpoint into one new file, the tracker running or not (never overwrites without --force)")
    .option("--force", "replace <file> if it exists")
    .action(async (file: string, o: { force?: boolean }) => backupModule(ctx, file, o.force === true));

  tracker
    .command("restore <file>")
    .description("put a backup made by `tracker backup` back into tracker.dataDir; stop the tracker first")
    .option("--force", "replace the database there (it is kept beside as fleet.db.replaced-<time>)")
    .action(async (file: string, o: { force?: boolean }) => restoreModule(ctx, file, o.force === true));

  tracker
    .command("resync")
    .description(
      "read the ledger again from a block (default: the deployment block), e.g. after REORG_TOO_DEEP; stop the tracker first (reports and anchors are kept)",
    )
    .option("--from-block <n>", "the first block to read again: one the chain cannot reorganise (a finalized block), at or below the fork")
    .action(async (o: { fromBlock?: string }) => resyncModule(ctx, o.fromBlock));
}

// ---------------------------------------------------------------- tracker register

async function registerModule(ctx: CliContext, parentOption: string | boolean | undefined): Promise<void> {
  const config = await ctx.config();
  const self = requireTrackerModule(config);
  const parent =
    parentOption === false ? ZeroHash : typeof parentOption === "string" ? parseIdOrLabel(parentOption, "--parent") : (config.tracker.parent?.id ?? ZeroHash);
  if (parent === self.id) throw new InputError("INVALID_INPUT", `--parent: ${parent} is this module's own id: give the id of the module above it`);
  const wallet = new Wallet(self.privateKey);
  const publicKey = wallet.signingKey.compressedPublicKey;
  const { registry, fleet, signer } = await ctx.connect();
  if (wallet.address === signer.address) {
    ctx.io.stderr("warning: the tracker module's key is the administrator's key: give the module a key of its own (ota-ledger tracker keygen <file>)\n");
  }
  const shown = {
    id: self.id,
    label: config.tracker.moduleLabel ?? null,
    signer: wallet.address,
    publicKey,
    parent: parent === ZeroHash ? null : parent,
    role: parent === ZeroHash ? "server" : "intermediate",
  };
  const where = parent === ZeroHash ? "a server module" : `an intermediate module under ${parent}`;

  const existing = await trackerModuleOf(fleet, self.id);
  if (existing) {
    if (existing.signer.toLowerCase() === wallet.address.toLowerCase() && existing.parent.toLowerCase() === parent) {
      ctx.output(
        { module: shown, alreadyRegistered: true, tx: null },
        `tracker module ${self.id} is already registered with this key as ${where}: nothing sent`,
      );
      return;
    }
    throw new OtaError(
      "MODULE_EXISTS",
      `tracker module ${self.id} is already registered with signer ${existing.signer} and parent ${existing.parent}, not this key's ${wallet.address} and ${parent}`,
      { details: { hint: "module ids are never reused: choose another tracker.moduleId (OTA_TRACKER_MODULE), or use that module's key" } },
    );
  }
  if (!(await registry.hasRole(TRACKER_ROLE, signer.address))) {
    throw new OtaError("TRACKER_ROLE_MISSING", `the account ${signer.address} does not hold TRACKER_ROLE, which registering a tracker module needs`, {
      details: {
        account: signer.address,
        role: "TRACKER_ROLE",
        hint: `an administrator grants it with \`ota-ledger tracker grant ${signer.address}\`, or send with a key that holds it (OTA_PRIVATE_KEY or OTA_KEY_FILE)`,
      },
    });
  }
  const { tx } = await confirm(fleet.registerTrackerModule(self.id, wallet.address, publicKey, parent));
  ctx.output(
    { module: shown, alreadyRegistered: false, tx },
    [
      `registered tracker module ${self.id}${shown.label ? ` ("${shown.label}")` : ""} as ${where}`,
      `  signer      ${wallet.address}`,
      `  public key  ${publicKey}`,
      describeTx(tx),
    ].join("\n"),
  );
}

// ---------------------------------------------------------------- tracker start

async function startModule(ctx: CliContext): Promise<void> {
  const config = await ctx.config();
  const self = requireTrackerModule(config);
  const t = trackerModuleSettings(config.tracker);
  const chain = await ctx.connectReadOnly();
  // One module per data folder: two would write one fleet database and one checkpoint.
  const lock = await lockFolder(t.dataDir, "a tracker module");
  try {
    const log = (line: string) => ctx.io.stderr(`${line}\n`);
    // The ledger duties (failure totals, status anchors) are sent with the configured account key, when there is one.
    const ledgerAccount = config.privateKey && !t.parent ? new Wallet(config.privateKey, chain.provider) : undefined;
    // Release bundles (docs/adr/0019): mirrored, and requested by administrators, where the deployment of this registry has ReleaseBundles.
    const bundles = config.bundles ? ReleaseBundles__factory.connect(config.bundles, chain.provider) : undefined;
    const tracker = new TrackerModule({
      ...t, // the tracker section as it is, its defaults filled in from the settings table
      chain: {
        provider: chain.provider,
        registry: chain.registry,
        fleet: chain.fleet,
        policies: chain.policies,
        anchors: chain.anchors,
        bundles,
        domain: chain.domain,
        fromBlock: chain.fromBlock,
      },
      ledgerAccount,
      module: self,
      log,
    });
    let http: RunningTrackerHttp;
    let mqtt: RunningTrackerMqtt | undefined;
    try {
      await tracker.start();
      http = await listen(tracker, t, log);
      // Reports over MQTT too (ADR 0015), beside the HTTP API, when a broker is configured.
      if (t.mqtt)
        mqtt = await startTrackerMqtt(tracker, { url: t.mqtt.url, topicPrefix: t.mqtt.topicPrefix, log }).catch(async (err) => {
          await http.close();
          throw err;
        });
    } catch (err) {
      await tracker.stop();
      throw err;
    }
    if (!t.apiToken && !isLoopback(t.host)) {
      log(`warning: the read API and dashboard on ${t.host}:${t.port} are open to anyone who reaches them: set tracker.apiToken (OTA_TRACKER_TOKEN)`);
    }
    const base = http.url.replace(/\/+$/, "");
    const shown = {
      url: http.url,
      dashboard: `${base}/`,
      api: `${base}/v1`,
      openapi: `${base}/openapi.json`,
      module: { id: tracker.id, role: tracker.role, signer: tracker.wallet.address, parent: t.parent ?? null },
      dataDir: t.dataDir,
      apiToken: t.apiToken ? "required" : "none",
      ledgerDuties: ledgerDutiesOf(tracker, t, ledgerAccount?.address ?? null),
      downloadLogs: { servers: t.firmwareServers, everyMs: t.downloadLogMs },
      mqtt: t.mqtt ? { url: t.mqtt.url, topicPrefix: t.mqtt.topicPrefix, connected: mqtt?.connected ?? false } : null,
    };
    ctx.output(
      shown,
      [
        `tracker module ${tracker.id} (${tracker.role}${t.parent ? ` under ${t.parent.id} at ${t.parent.url}` : ""}) on ${http.url}`,
        `  dashboard  ${shown.dashboard}`,
        `  API        ${shown.api}${t.apiToken ? " (bearer token: tracker.apiToken)" : ""}`,
        `  OpenAPI    ${shown.openapi}`,
        `  reports    POST ${shown.api}/reports${shown.mqtt ? `, and MQTT at ${shown.mqtt.url} (${shown.mqtt.topicPrefix}/${tracker.id}/<device>/reports)` : ""}`,
        `  data       ${t.dataDir}`,
        `  ledger     ${describeLedgerDuties(shown.ledgerDuties)}`,
        `  downloads  ${t.firmwareServers.length === 0 ? "no firmware server's log read (tracker.firmwareServers)" : `the logs of ${t.firmwareServers.join(", ")} every ${describeMs(shown.downloadLogs.everyMs)} (the module's key needs TRACKER_ROLE)`}`,
        "Ctrl-C stops it",
      ].join("\n"),
    );
    await ctx.untilStopped();
    log("tracker: stopping");
    await mqtt?.close();
    await http.close();
    await tracker.stop();
    log("tracker: stopped");
  } finally {
    await lock.release();
  }
}

/** What the module posts on the ledger, and with which account (issue 6). */
function ledgerDutiesOf(tracker: TrackerModule, t: TrackerModuleSettings, account: string | null) {
  const on = tracker.role === "server" && account !== null;
  return {
    account: on ? account : null,
    failureTotals: on && tracker.options.chain.policies !== undefined,
    anchoring: on && tracker.anchoring !== undefined && t.anchorMs > 0,
    anchorMs: t.anchorMs,
    failureReportMs: t.failureReportMs,
  };
}

function describeLedgerDuties(d: ReturnType<typeof ledgerDutiesOf>): string {
  if (!d.account) return "nothing posted (the server module posts with the configured account key: privateKey / OTA_PRIVATE_KEY)";
  const parts = [
    d.failureTotals ? `failure totals every ${describeMs(d.failureReportMs)}` : "no failure totals (no policies contract)",
    d.anchoring ? `status anchors every ${describeMs(d.anchorMs)}` : "no status anchors (no anchors contract, or tracker.anchorMs 0)",
  ];
  return `${parts.join(", ")}, sent by ${d.account} (needs TRACKER_ROLE)`;
}

async function listen(tracker: TrackerModule, t: OtaConfig["tracker"], log: (line: string) => void): Promise<RunningTrackerHttp> {
  try {
    return await startTrackerHttp(tracker, { host: t.host, port: t.port, apiToken: t.apiToken, publicOrigin: t.publicUrl && new URL(t.publicUrl).origin, log });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new OtaError(
        "TRACKER_LISTEN_FAILED",
        `the tracker cannot listen on ${t.host}:${t.port} (${code}): stop what uses that port, or set tracker.port / tracker.host (OTA_TRACKER_PORT, OTA_TRACKER_HOST)`,
        { cause: err },
      );
    }
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

// ---------------------------------------------------------------- tracker mqtt-config

/**
 * The broker's files for this module (ADR 0015): a login for the module and for each active device
 * it knows (from its fleet database: devices enrolled one by one, and batch devices once they
 * reported), with the passwords both sides derive, and an ACL that gives each device its own
 * topics. Written atomically, the password file mode 0600.
 */
async function writeBrokerConfig(ctx: CliContext, dirText: string, o: { host?: string; port?: string; runAs?: string }): Promise<void> {
  const config = await ctx.config();
  const self = requireTrackerModule(config);
  const t = config.tracker;
  const fromUrl = t.mqtt ? brokerEndpoint(t.mqtt.url) : undefined;
  const host = o.host ?? fromUrl?.host ?? "127.0.0.1";
  const port = o.port !== undefined ? parseId(o.port, "--port", 65535) : (fromUrl?.port ?? 1883);
  if (o.runAs !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/i.test(o.runAs)) throw new InputError("INVALID_INPUT", `--run-as "${o.runAs}" is not a user name`);
  const dir = path.resolve(ctx.io.cwd, dirText);
  const db = new FleetStore(path.join(t.dataDir, "fleet.db"));
  let devices: { id: string; publicKey: string }[];
  try {
    devices = db.devices.activeKeys();
  } finally {
    db.close();
  }
  const topicPrefix = t.mqtt?.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
  const files = brokerConfigFiles({ moduleId: self.id, modulePrivateKey: self.privateKey, devices, host, port, dir, topicPrefix, runAs: o.runAs });
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, "passwd"), files.passwd, { mode: 0o600 });
  await writeFileAtomic(path.join(dir, "acl"), files.acl);
  await writeFileAtomic(path.join(dir, "mosquitto.conf"), files["mosquitto.conf"]);
  const url = `mqtt://${host.includes(":") ? `[${host}]` : host}:${port}`;
  ctx.output(
    { dir, url, topicPrefix, module: self.id, devices: devices.length },
    [
      `mosquitto configuration for tracker module ${self.id} written to ${dir}`,
      `  logins      the module and ${devices.length} active device(s) of ${t.dataDir}/fleet.db`,
      `  topics      ${topicPrefix}/${self.id}/<device>/reports and .../notices, each device its own`,
      `run the broker: mosquitto -c ${path.join(dir, "mosquitto.conf")}   (it must be able to read the files${o.runAs ? "" : ": --run-as <user> names the user it runs as"})`,
      `then set tracker.mqtt.url (OTA_TRACKER_MQTT_URL) to ${url}, and in each device.json tracker.transport {"kind": "mqtt", "url": "${url}"}`,
      "write it again (and signal the broker: kill -HUP) when devices are enrolled, suspended or re-keyed",
    ].join("\n"),
  );
}

// ---------------------------------------------------------------- tracker backup, tracker restore

async function backupModule(ctx: CliContext, file: string, force: boolean): Promise<void> {
  const config = await ctx.config();
  const r = await backupTracker({ dataDir: config.tracker.dataDir, file: path.resolve(ctx.io.cwd, file), force, moduleId: config.tracker.moduleId });
  ctx.output(
    r,
    [
      `tracker backup written to ${r.file} (${formatBytes(r.bytes)})`,
      `  from        ${config.tracker.dataDir}`,
      `  ledger      ${r.checkpoint ? `block ${r.checkpoint.block}` : "no checkpoint yet (a restore reads the ledger from the deployment block)"}${r.trimmedBlocks ? ` (events of ${r.trimmedBlocks} later block(s) left to be read again)` : ""}`,
      `  devices     ${r.devices}, reports ${r.reports}`,
      "keep the module's key file (tracker.keyFile) and ota-ledger.json with it; restore with `ota-ledger tracker restore <file>` while the tracker is stopped",
    ].join("\n"),
  );
}

async function restoreModule(ctx: CliContext, file: string, force: boolean): Promise<void> {
  const config = await ctx.config();
  const r = await restoreTracker({ dataDir: config.tracker.dataDir, file: path.resolve(ctx.io.cwd, file), force, moduleId: config.tracker.moduleId });
  const lines = [
    `tracker restored into ${r.dataDir} from ${r.file}${r.takenAt ? ` (taken ${new Date(r.takenAt).toISOString()})` : ""}`,
    `  devices     ${r.devices}`,
    `  ledger      ${r.checkpoint ? `resumes after block ${r.checkpoint.block}` : "no checkpoint: read again from the deployment block"}`,
  ];
  if (r.replaced.database)
    lines.push(`  replaced    ${r.replaced.database}${r.replaced.checkpoint ? `, ${r.replaced.checkpoint}` : ""} (kept: delete them once the tracker runs)`);
  lines.push("start it with `ota-ledger tracker start`: it catches up with the ledger first; devices' reports since the backup come back as they report");
  ctx.output(r, lines.join("\n"));
}

// ---------------------------------------------------------------- tracker resync

/**
 * After a reorganisation below the module's window (REORG_TOO_DEEP) the mirror cannot tell which
 * of its blocks left the chain: it forgets everything from a block the operator knows to be final
 * (default the deployment block, always safe) and reads the ledger again from there on start.
 */
async function resyncModule(ctx: CliContext, fromOption: string | undefined): Promise<void> {
  const config = await ctx.config();
  const t = config.tracker;
  const chain = await ctx.connectReadOnly();
  const from = fromOption === undefined ? chain.fromBlock : parseBlockNumber(fromOption, "--from-block");
  if (from < chain.fromBlock)
    throw new InputError(
      "INVALID_INPUT",
      `--from-block ${from} is before the registry's deployment block ${chain.fromBlock}: give ${chain.fromBlock} or later`,
    );
  const head = await chain.provider.getBlockNumber();
  if (from > head) throw new InputError("INVALID_INPUT", `--from-block ${from} is past the chain's head (${head}): give a block the chain has`);
  const lock = await lockFolder(t.dataDir, "a tracker module"); // the tracker must be stopped
  try {
    const parentBlock = from > chain.fromBlock ? await chain.provider.getBlock(from - 1) : null;
    if (from > chain.fromBlock && !parentBlock?.hash) throw new OtaError("LEDGER_UNAVAILABLE", `the ledger did not give block ${from - 1}: try again`);
    const db = new FleetStore(path.join(t.dataDir, "fleet.db"));
    try {
      const before = db.ledger.position();
      const r = resyncLedger(db, from, parentBlock ? { number: parentBlock.number, hash: parentBlock.hash! } : null);
      ctx.output(
        { dataDir: t.dataDir, fromBlock: from, previousBlock: before?.block ?? null, droppedBlocks: r.droppedBlocks },
        [
          `tracker in ${t.dataDir} will read the ledger again from block ${from}${before ? ` (it stood at block ${before.block})` : ""}`,
          `  forgot the ledger events of ${r.droppedBlocks} block(s); reports, decisions and anchors are kept`,
          "start it with `ota-ledger tracker start`: it catches up with the ledger first",
        ].join("\n"),
      );
    } finally {
      db.close();
    }
  } finally {
    await lock.release();
  }
}

function parseBlockNumber(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new InputError("INVALID_INPUT", `${what} "${text}" must be a block number (0 or more)`);
  return n;
}
