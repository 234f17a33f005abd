import { runAsProcess, runProgram } from "./program";
import { processIo, type CliIo } from "./io";
// Imported statically (not loaded by name as main.ts does) so that a bundler follows it: this is
// the entry of the device agent's bundle (scripts/buildDevice.js, ADR 0007).
import * as deviceAgent from "./commands/deviceAgent";

/**
 * The device's own CLI, `ota-device`: only the commands a device runs (device run, install,
 * keygen), with the same global options, errors and exit codes as `ota-ledger`.
 */
export function deviceMain(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runProgram(
    {
      name: "ota-device",
      description: "OTA Ledger's device agent (X.1368 firmware consumer): follows the ledger, verifies, installs into A/B slots, reports",
      register: deviceAgent.register,
    },
    argv,
    io,
  );
}

if (require.main === module) runAsProcess(deviceMain);
