import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError } from "commander";
import { CliContext, type GlobalOptions } from "./context";
import { EXIT, describeError, printError } from "./reportError";
import { processIo, type CliIo } from "./io";

export type { CliIo } from "./io";
export { processIo } from "./io";

/**
 * The command groups, each agent/cli/commands/<name>.ts exporting
 * `register(program: Command, ctx: CliContext): void`. Adding a group is adding its name here.
 */
export const COMMAND_GROUPS = ["config", "provider", "hardware", "component", "device", "release", "releaseStatus", "server", "fleet", "tracker", "policy", "rollout", "role"];

/**
 * Runs one ota-ledger command line and returns its exit code: 0 ok, 1 the operation failed,
 * 2 bad usage or configuration. It never exits the process, so tests call it in-process.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  const ctx = new CliContext(io, () => program.opts<GlobalOptions>());
  try {
    for (const name of COMMAND_GROUPS) loadGroup(name).register(program, ctx);
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (err) {
    // Help asked for (--help, `help <command>`) ends with code 0; help shown for a missing subcommand does not.
    if (err instanceof CommanderError && err.exitCode === 0) return EXIT.ok;
    // --json may not have been parsed when the command line itself is wrong.
    const json = program.opts<GlobalOptions>().json === true || argv.includes("--json");
    const report = describeError(err);
    printError(io, json, report);
    return report.exitCode;
  } finally {
    await ctx.close();
  }
}

function buildProgram(io: CliIo): Command {
  return new Command("ota-ledger")
    .description("OTA Ledger: the X.1368 firmware-update registry on an EVM ledger")
    .version(packageVersion(), "-V, --version", "print the version of ota-ledger")
    .option("--config <path>", "configuration file (default: ./ota-ledger.json if it exists)")
    .option("--json", "machine-readable output: one JSON document on stdout")
    .option("--rpc <url>", "JSON-RPC endpoint of the chain (overrides rpcUrl / OTA_RPC_URL)")
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: () => {}, // errors are printed once, by printError, in the chosen form
    });
}

interface CommandGroup {
  register(program: Command, ctx: CliContext): void;
}

function loadGroup(name: string): CommandGroup {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const group = require(`./commands/${name}`) as Partial<CommandGroup>;
  if (typeof group.register !== "function") {
    throw new Error(`agent/cli/commands/${name}.ts must export register(program, ctx)`);
  }
  return group as CommandGroup;
}

/** This package's version: package.json sits above agent/ in a checkout and above dist/ when installed. */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "ota-ledger" && pkg.version) return pkg.version;
    } catch {
      // not here: look one folder up
    }
    if (path.dirname(dir) === dir) return "unknown";
  }
}
