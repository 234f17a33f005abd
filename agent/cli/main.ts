import { runProgram, type CommandGroup } from "./program";
import { processIo, type CliIo } from "./io";

export type { CliIo } from "./io";
export { processIo } from "./io";

/**
 * The command groups, each agent/cli/commands/<name>.ts exporting
 * `register(program: Command, ctx: CliContext): void`. Adding a group is adding its name here.
 * deviceAgent (device run, install, keygen) is also the whole of the device's own CLI (deviceMain.ts).
 */
export const COMMAND_GROUPS = [
  "config",
  "provider",
  "hardware",
  "component",
  "device",
  "deviceAgent",
  "release",
  "releaseStatus",
  "bundle",
  "server",
  "fleet",
  "tracker",
  "campaign",
  "policy",
  "rollout",
  "role",
];

/**
 * Runs one ota-ledger command line and returns its exit code: 0 ok, 1 the operation failed,
 * 2 bad usage or configuration. It never exits the process, so tests call it in-process.
 */
export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runProgram(
    {
      name: "ota-ledger",
      description: "OTA Ledger: the X.1368 firmware-update registry on an EVM ledger",
      register: (program, ctx) => {
        for (const name of COMMAND_GROUPS) loadGroup(name).register(program, ctx);
      },
    },
    argv,
    io,
  );
}

function loadGroup(name: string): CommandGroup {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const group = require(`./commands/${name}`) as Partial<CommandGroup>;
  if (typeof group.register !== "function") {
    throw new Error(`agent/cli/commands/${name}.ts must export register(program, ctx)`);
  }
  return group as CommandGroup;
}
