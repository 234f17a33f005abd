import { spawn } from "node:child_process";
import path from "node:path";
import type { SlotImage } from "./bootState";
import { IMAGE_FILE } from "./slotImageFile";

/** Decides whether a trial boot of a slot is healthy; throwing counts as unhealthy. */
export type HealthCheck = (slotDir: string, image: SlotImage) => Promise<boolean>;

/**
 * A health check that runs `cmd` (argv, no shell) with OTA_SLOT_DIR and OTA_IMAGE set and passes
 * on exit code 0 within `timeoutMs`. On timeout the command's whole process group is killed, so
 * a hung check leaves nothing running. `cwd` is the folder it runs in (and against which a
 * relative command path such as ./selftest.sh is found); default: the agent's own.
 */
export function commandHealthCheck(cmd: string[], timeoutMs: number, { cwd }: { cwd?: string } = {}): HealthCheck {
  if (cmd.length === 0) throw new RangeError("commandHealthCheck needs a command");
  return (slotDir) =>
    new Promise<boolean>((resolve) => {
      const child = spawn(cmd[0], cmd.slice(1), {
        cwd,
        env: { ...process.env, OTA_SLOT_DIR: slotDir, OTA_IMAGE: path.join(slotDir, IMAGE_FILE) },
        stdio: "ignore",
        detached: true, // its own process group, killed as one on timeout
      });
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
        resolve(false);
      }, timeoutMs);
      child.once("error", () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve(code === 0);
      });
    });
}
