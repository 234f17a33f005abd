import type { Command } from "commander";
import type { CliContext } from "../context";
import { registerSimulate } from "./fleet/simulate";
import { registerStatusCommands } from "./fleet/status";

/**
 * `fleet`: a simulated fleet of device agents on this machine (fleet/simulate.ts), and the fleet's
 * status read from a status tracker (fleet/status.ts). One real device agent is `device run`
 * (device/onDevice.ts).
 */
export function register(program: Command, ctx: CliContext): void {
  const fleet = program
    .command("fleet")
    .description("the fleet: its status from the tracker (status, list, outdated, vulnerable), and simulated fleets for demos, tests and benchmarks");
  registerSimulate(fleet, ctx);
  registerStatusCommands(fleet, ctx);
}
