// First: what Node 20 lacks (the device agent runs on Node 20, 22 and 24).
import "../runtime/node20";
import { runAsProcess, runProgram } from "./program";
import { processIo, type CliIo } from "./io";
// Only the device's own commands: this is the entry of the device agent's bundle
// (scripts/buildDevice.js, ADR 0007), which must not pull in the administrator's commands.
import { registerOnDeviceCommands } from "./commands/device/onDevice";

/**
 * The device's own CLI, `ota-device`: only the commands a device runs (device run, install,
 * keygen), with the same global options, errors and exit codes as `ota-ledger`.
 */
export function deviceMain(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runProgram(
    {
      name: "ota-device",
      description: "OTA Ledger's device agent (X.1368 firmware consumer): follows the ledger, verifies, installs into A/B slots, reports",
      register: (program, ctx) =>
        registerOnDeviceCommands(program.command("device").description("this device: run its agent, install a release by hand, make its key"), ctx),
    },
    argv,
    io,
  );
}

if (require.main === module) runAsProcess(deviceMain);
