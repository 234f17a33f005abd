// `npm run docs:config` writes docs/configuration.md from the settings table (agent/cli/settings.ts);
// `npm run check:config-docs` (part of `npm run lint`) fails when the file is not what the table
// makes, so the reference cannot drift from the code. Nothing in the file is written by hand.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SETTINGS, isSetting, rowsOf, type Setting, type SettingsTree } from "../agent/cli/settings";

export const CONFIGURATION_DOC = path.join(__dirname, "..", "docs", "configuration.md");

/** Each section's heading (its anchor: #general, #storage, ...) and what it configures; a section not named here is headed by its key alone. */
const SECTIONS: Record<string, [string, string]> = {
  "": ["General", "The chain, the accounts and where the firmware server is (the file's top level)."],
  storage: ["storage", "Where the firmware server keeps artifacts ([ADR 0002](adr/0002-artifacts-and-serving.md))."],
  server: ["server", "The firmware server, `ota-ledger server start` ([server.md](server.md))."],
  tracker: [
    "tracker",
    "The status tracker, `ota-ledger tracker start`, and where the fleet commands reach one ([tracker.md](tracker.md), [ADR 0004](adr/0004-tracker.md)).",
  ],
};

const INTRO = `# Configuration reference

<!-- Generated from agent/cli/settings.ts by \`npm run docs:config\`: edit the table there, not this file
     (\`npm run lint\` fails when this file is not what the table makes). -->

Every setting of \`ota-ledger\` (the CLI, \`server start\`, \`tracker start\`, and the device agent's
\`ota-ledger.json\`), one row each. A setting comes from, in order: a command-line option where one
exists (\`--rpc\`, \`--tracker\`), its environment variable, \`ota-ledger.json\` (or \`--config <file>\`),
its default. Empty environment variables count as unset. Everything is checked before anything is
sent; an error names the setting as it was given (the variable, or the field in the file) and what
it must look like, and unknown fields in the file are refused. Relative paths resolve against the
folder of what set them: the config file's folder for the file, the working folder for the
environment and the defaults. \`ota-ledger config show\` prints the result, keys and tokens hidden
(intervals and limits whose default their service applies are shown only when set).
Keys come, in order, from the key's variable, the key file's variable, the file's key, the file's key
file. A device's own \`device.json\` is described in [device.md](device.md).
`;

/** docs/configuration.md as the table makes it. */
export function renderConfigurationDoc(tree: SettingsTree = SETTINGS): string {
  const sections = new Map<string, { path: string; row: Setting }[]>();
  for (const entry of rowsOf(tree)) {
    const key = entry.path.includes(".") ? entry.path.split(".")[0] : "";
    sections.set(key, [...(sections.get(key) ?? []), entry]);
  }
  const order = ["", ...Object.keys(tree).filter((k) => !isSetting(tree[k]))].filter((k) => sections.has(k));
  const parts = [INTRO];
  for (const key of order) {
    const [heading, about] = SECTIONS[key] ?? [key, ""];
    parts.push(
      `## ${heading}`,
      "",
      ...(about ? [about, ""] : []),
      "| setting | environment variable | default | unit | description |",
      "| --- | --- | --- | --- | --- |",
    );
    for (const { path: p, row } of sections.get(key)!) {
      parts.push(`| \`${p}\` | ${row.env ? `\`${row.env}\`` : ""} | ${cell(defaultOf(row))} | ${row.unit} | ${cell(descriptionOf(row))} |`);
    }
    parts.push("");
  }
  return parts.join("\n");
}

function defaultOf(row: Setting): string {
  if (row.default !== undefined)
    return `${literal(row.default)}${row.unit === "ms" ? ` (${duration(row.default as number)})` : row.unit === "bytes" ? ` (${bytes(row.default as number)})` : ""}`;
  return `${row.derived ?? "none"}${row.example === undefined ? "" : ` (e.g. ${literal(row.example)})`}`;
}

function descriptionOf(row: Setting): string {
  const notes = [row.variant !== undefined && `only with kind "${row.variant}"`, row.required && "required whenever its section is given"].filter(Boolean);
  return notes.length === 0 ? row.description : `${row.description} (${notes.join("; ")})`;
}

function literal(value: unknown): string {
  return `\`${typeof value === "string" ? value : JSON.stringify(value)}\``;
}

function duration(ms: number): string {
  if (ms === 0) return "never";
  const units: [number, string][] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "min"],
    [1000, "s"],
  ];
  const [size, unit] = units.find(([u]) => ms % u === 0) ?? [1, "ms"];
  return `${ms / size} ${unit}`;
}

function bytes(n: number): string {
  const units: [number, string][] = [
    [1024 ** 3, "GiB"],
    [1024 ** 2, "MiB"],
    [1024, "KiB"],
  ];
  const [size, unit] = units.find(([u]) => n % u === 0) ?? [1, "B"];
  return `${n / size} ${unit}`;
}

/** Text safe inside a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

if (require.main === module) {
  const wanted = renderConfigurationDoc();
  const relative = path.relative(process.cwd(), CONFIGURATION_DOC);
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(CONFIGURATION_DOC, "utf8");
    } catch {
      // missing: not current
    }
    if (current !== wanted) {
      console.error(`${relative} is not what the settings table (agent/cli/settings.ts) makes: run \`npm run docs:config\` and commit the result`);
      process.exit(1);
    }
    console.log(`${relative} is current`);
  } else {
    writeFileSync(CONFIGURATION_DOC, wanted);
    console.log(`wrote ${relative}`);
  }
}
