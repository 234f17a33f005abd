import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError } from "commander";
import { CliContext, type GlobalOptions } from "./context";
import { EXIT, describeError, printError } from "./reportError";
import type { CliIo } from "./io";

/**
 * Adds one top-level command to a program: agent/cli/commands/<name>.ts exports
 * `register(program, ctx)`, which adds the command <name> and every subcommand of it.
 */
export type RegisterCommand = (program: Command, ctx: CliContext) => void;

/** What differs between the full `ota-ledger` CLI and the device's own `ota-device`. */
export interface ProgramSpec {
  name: string;
  description: string;
  /** Adds the commands; called inside the error handling, so a command that fails to register is reported like any error. */
  register: RegisterCommand;
}

/**
 * Runs one command line of the program `spec` describes and returns its exit code: 0 ok, 1 the
 * operation failed, 2 bad usage or configuration. It never exits the process, so tests call it
 * in-process. Both CLIs share it, so their global options, errors and exit codes are the same.
 */
export async function runProgram(spec: ProgramSpec, argv: string[], io: CliIo): Promise<number> {
  // --version only alone: commander takes a program-level --version anywhere on the line, where
  // `release publish --version 1.2.0` means the release's version.
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    io.stdout(packageVersion() + "\n");
    return EXIT.ok;
  }
  const program = buildProgram(spec, io);
  const ctx = new CliContext(io, () => program.opts<GlobalOptions>());
  try {
    spec.register(program, ctx);
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (err) {
    // Help asked for (--help, `help <command>`) ends with code 0; help shown for a missing subcommand does not.
    if (err instanceof CommanderError && err.exitCode === 0) return EXIT.ok;
    // --json may not have been parsed when the command line itself is wrong.
    const json = program.opts<GlobalOptions>().json === true || argv.includes("--json");
    const report = describeError(err);
    if (report.code === "USAGE") report.hint = `see ${spec.name} --help, or ${spec.name} <command> --help`;
    printError(io, json, report);
    return report.exitCode;
  } finally {
    await ctx.close();
  }
}

/** Runs `run` on the process's arguments and sets its exit code (bin/ota-ledger.js for the full CLI, deviceMain.ts for ota-device). */
export function runAsProcess(run: (argv: string[]) => Promise<number>): void {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error [UNEXPECTED]: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

function buildProgram(spec: ProgramSpec, io: CliIo): Command {
  return new Command(spec.name)
    .description(`${spec.description} (${spec.name} --version prints its version)`)
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

/** The packages whose version this is: the full one, and the device agent's folder (scripts/buildDevice.js writes its package.json). */
const PACKAGE_NAMES = new Set(["ota-ledger", "ota-ledger-device"]);

/**
 * This package's version: package.json sits above agent/ in a checkout, above dist/ when
 * installed, and beside the bundle in the device agent's folder.
 */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name !== undefined && PACKAGE_NAMES.has(pkg.name) && pkg.version) return pkg.version;
    } catch {
      // not here: look one folder up
    }
    if (path.dirname(dir) === dir) return "unknown";
  }
}
