import { expect } from "chai";
import { promises as fs, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, redactConfig, trackerModuleSettings } from "../../../agent/cli/config";
import { SETTINGS, envLayerSchema, envSchemaOf, fileLayerSchema, fileSchemaOf, fromText, rowsOf, type Setting } from "../../../agent/cli/settings";
import { parseIdOrLabel, parseLabel } from "../../../agent/cli/parse";
import { PREPARED_DEFAULTS } from "../../../agent/core/serviceDefaults";
import { CONFIGURATION_DOC, renderConfigurationDoc } from "../../../scripts/configDocs";

const ROWS = rowsOf(SETTINGS);

/** The settings whose resolution derives more than the layers give (config.ts says which and why). */
const DERIVED = new Set([
  "rpcUrl",
  "rpcUrls",
  "rpcQuorum",
  "privateKey",
  "keyFile",
  "tracker.moduleId",
  "tracker.privateKey",
  "tracker.keyFile",
  "tracker.parent.id",
  "tracker.parent.url",
]);

/** `{ a: { b: value } }` for "a.b", with what the row's section needs beside it (its kind and that kind's settings, its required settings). */
function fileWith(p: string, value: unknown): Record<string, unknown> {
  const target = ROWS.find((r) => r.path === p)!.row;
  const file: Record<string, unknown> = {};
  const keys = p.split(".");
  let at = file;
  let prefix = "";
  for (const key of keys.slice(0, -1)) {
    prefix += `${key}.`;
    at = (at[key] = {}) as Record<string, unknown>;
    for (const { path: q, row } of ROWS.filter((r) => r.path.startsWith(prefix) && !r.path.slice(prefix.length).includes("."))) {
      const leaf = q.slice(prefix.length);
      if (row.required || (row.variant !== undefined && row.variant === target.variant)) at[leaf] = sample(row);
      if (row.discriminates) at[leaf] = target.variant ?? row.default;
    }
  }
  at[keys[keys.length - 1]] = value;
  return file;
}

/** A valid value of the row: its default, else its example. */
function sample(row: Setting): unknown {
  return row.default ?? row.example;
}

function valueAt(config: unknown, p: string): unknown {
  return p.split(".").reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], config);
}

describe("ota-ledger configuration: the settings table (agent/cli/settings)", function () {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-settings-"));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("every row has a description, a unit, and a default or an example its own schema accepts", () => {
    for (const { path: p, row } of ROWS) {
      expect(row.description, p).to.be.a("string").and.not.equal("");
      expect(sample(row), `${p}: a default or an example`).not.to.equal(undefined);
      expect(row.schema.safeParse(sample(row)).success, `${p}: its default or example passes its schema`).to.equal(true);
    }
  });

  it("every row is a field of the file's schema, named by its path when its value is wrong", () => {
    for (const { path: p, row } of ROWS) {
      const parsed = fileLayerSchema.safeParse(fileWith(p, { wrong: true }));
      expect(parsed.success, p).to.equal(false);
      expect(
        parsed.error!.issues.map((i) => i.path.join(".")),
        `${p}: its one issue names it`,
      ).to.deep.equal([p]);
      expect(fileLayerSchema.safeParse(fileWith(p, sample(row))).success, `${p}: its default or example is accepted in the file`).to.equal(true);
    }
  });

  it("every row's environment variable is one of the environment's schema, each variable once", () => {
    const names = ROWS.flatMap(({ row }) => (row.env ? [row.env] : []));
    expect(new Set(names).size, "no variable sets two settings").to.equal(names.length);
    expect(Object.keys(envLayerSchema.shape).sort()).to.deep.equal([...names].sort());
    for (const name of names) expect(name).to.match(/^OTA_[A-Z0-9_]+$/);
  });

  it("every row is a line of docs/configuration.md, and the file is what the table makes (npm run docs:config)", () => {
    const doc = renderConfigurationDoc();
    for (const { path: p, row } of ROWS) {
      const line = doc.split("\n").find((l) => l.startsWith(`| \`${p}\` |`));
      expect(line, p).not.to.equal(undefined);
      if (row.env) expect(line).to.include(`\`${row.env}\``);
    }
    expect(readFileSync(CONFIGURATION_DOC, "utf8"), "docs/configuration.md is current: run npm run docs:config").to.equal(doc);
  });

  it("a setting is one row: a row added to the table is in the file's schema, the environment's and the docs", () => {
    const added: Setting = { env: "OTA_TRACKER_EXAMPLE_MS", schema: SETTINGS.tracker.pollMs.schema, default: 5000, unit: "ms", description: "an example" };
    const tree = { ...SETTINGS, tracker: { ...SETTINGS.tracker, exampleMs: added } };
    expect(fileSchemaOf(tree).safeParse({ tracker: { exampleMs: 7000 } }).success).to.equal(true);
    expect(fileSchemaOf(SETTINGS).safeParse({ tracker: { exampleMs: 7000 } }).success).to.equal(false);
    expect(envSchemaOf(tree).shape).to.have.property("OTA_TRACKER_EXAMPLE_MS");
    expect(renderConfigurationDoc(tree)).to.include("| `tracker.exampleMs` | `OTA_TRACKER_EXAMPLE_MS` | `5000` (5 s) | ms | an example |");
  });

  it("resolves every row that derives nothing from the file, and from its variable over the file, with no code of its own", async () => {
    for (const { path: p, row } of ROWS.filter((r) => !DERIVED.has(r.path))) {
      const value = sample(row);
      const expected = row.schema.parse(value);
      const resolvedPath = (v: unknown, base: string) => (row.unit === "path" ? path.resolve(base, v as string) : v);
      await fs.writeFile(path.join(dir, "ota-ledger.json"), JSON.stringify(fileWith(p, value)));
      expect(valueAt(await loadConfig({ cwd: dir, env: {} }), p), `${p} from the file`).to.deep.equal(resolvedPath(expected, dir));
      if (row.env) {
        await fs.writeFile(path.join(dir, "ota-ledger.json"), "{}");
        const text = Array.isArray(value) ? value.join(",") : String(value);
        expect(fromText(row, text), `${p} from text`).to.deep.equal(value);
        const sub = path.join(dir, "sub");
        await fs.mkdir(sub, { recursive: true });
        expect(valueAt(await loadConfig({ cwd: sub, env: { [row.env]: text }, configPath: "../ota-ledger.json" }), p), `${p} from ${row.env}`).to.deep.equal(
          resolvedPath(expected, sub),
        );
      }
    }
  });

  it("tracker start hands the tracker its section with the table's defaults, and its own values over them", async () => {
    await fs.writeFile(path.join(dir, "ota-ledger.json"), JSON.stringify({ tracker: { livenessMs: 1234, mqtt: { url: "mqtt://127.0.0.1:1883" } } }));
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.tracker.renoticeMs, "config show shows what was set").to.equal(undefined);
    const t = trackerModuleSettings(config.tracker);
    expect(t).to.deep.include({
      livenessMs: 1234,
      renoticeMs: SETTINGS.tracker.renoticeMs.default,
      anchorMs: SETTINGS.tracker.anchorMs.default,
      reorgWindow: SETTINGS.tracker.reorgWindow.default,
      ledgerTxDeadlineMs: SETTINGS.tracker.txDeadlineMs.default,
      dataDir: config.tracker.dataDir,
    });
    expect(t.mqtt).to.deep.equal({ url: "mqtt://127.0.0.1:1883", topicPrefix: SETTINGS.tracker.mqtt.topicPrefix.default });
  });

  it("documents the firmware server's limits on unpublished artifacts as the server applies them (PREPARED_DEFAULTS)", () => {
    const prepared = SETTINGS.server.prepared;
    expect({
      ttlMs: prepared.ttlMs.default,
      maxPerProvider: prepared.maxPerProvider.default,
      maxBytesPerProvider: prepared.maxBytesPerProvider.default,
    }).to.deep.equal(PREPARED_DEFAULTS);
  });

  it("checks ids, labels and numbers with parse.ts's checks: a setting refuses what the command-line argument refuses", () => {
    const accepts = (f: () => unknown) => {
      try {
        f();
        return true;
      } catch {
        return false;
      }
    };
    for (const text of ["tracker-eu-1", " spaced ", "", "   ", "0x12", "0x" + "0".repeat(64), "0x" + "ab".repeat(32), "x".repeat(40), "ü".repeat(16)]) {
      expect(SETTINGS.tracker.moduleId.schema.safeParse(text).success, `moduleId ${JSON.stringify(text)}`).to.equal(accepts(() => parseIdOrLabel(text, "x")));
      expect(SETTINGS.tracker.networks.schema.safeParse([text]).success, `networks ${JSON.stringify(text)}`).to.equal(accepts(() => parseLabel(text, "x")));
      if (accepts(() => parseLabel(text, "x"))) expect(SETTINGS.tracker.networks.schema.parse([text])).to.deep.equal([parseLabel(text, "x")]);
    }
    for (const n of [0, 1, 65535, 65536, 1.5, -1]) {
      expect(SETTINGS.tracker.port.schema.safeParse(n).success, `port ${n}`).to.equal(n >= 1 && n <= 65535 && Number.isInteger(n));
    }
  });
  it("a setting the table marks secret is shown by config show as set or not, never its value: the row's secret flag is all it takes", async () => {
    const secrets = ROWS.filter((r) => r.row.secret);
    expect(secrets.map((r) => r.path)).to.have.members(["privateKey", "tracker.privateKey", "tracker.apiToken"]);
    const env = Object.fromEntries(secrets.map((r, i) => [r.row.env!, String(sample(r.row)).replace(/.$/, String(i))]));
    const config = await loadConfig({ cwd: dir, env });
    for (const r of secrets) expect(valueAt(config, r.path), `${r.path} resolved`).to.equal(env[r.row.env!]);
    const shown = redactConfig(config);
    for (const r of secrets) expect(valueAt(shown, r.path), r.path).to.equal("(set, hidden)");
    for (const value of Object.values(env)) expect(JSON.stringify(shown)).to.not.include(value.slice(2));
    const unset = redactConfig(await loadConfig({ cwd: dir, env: {} }));
    for (const r of secrets) expect(valueAt(unset, r.path), `${r.path} unset`).to.equal(null);
  });
});
