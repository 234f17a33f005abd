// First: Node 20 lacks Promise.withResolvers, which Helia calls.
import "../runtime/node20";
import { runProgram, type RegisterCommand } from "./program";
import { processIo, type CliIo } from "./io";
import { register as config } from "./commands/config";
import { register as provider } from "./commands/provider";
import { register as hardware } from "./commands/hardware";
import { register as component } from "./commands/component";
import { register as device } from "./commands/device";
import { register as release } from "./commands/release";
import { register as bundle } from "./commands/bundle";
import { register as server } from "./commands/server";
import { register as fleet } from "./commands/fleet";
import { register as tracker } from "./commands/tracker";
import { register as group } from "./commands/group";
import { register as update } from "./commands/update";
import { register as policy } from "./commands/policy";
import { register as rollout } from "./commands/rollout";
import { register as role } from "./commands/role";

export type { CliIo } from "./io";
export { processIo } from "./io";

/**
 * The top-level commands of `ota-ledger`, in the order its help lists them. Each is registered by
 * exactly one file named after it, agent/cli/commands/<name>.ts, which adds the command and all
 * its subcommands (a large command's are in agent/cli/commands/<name>/). Adding a command is adding
 * its file and its line here. The device's own CLI is deviceMain.ts.
 */
export const COMMANDS: readonly RegisterCommand[] = [
  config,
  provider,
  hardware,
  component,
  device,
  release,
  bundle,
  server,
  fleet,
  tracker,
  group,
  update,
  policy,
  rollout,
  role,
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
        for (const register of COMMANDS) register(program, ctx);
      },
    },
    argv,
    io,
  );
}
