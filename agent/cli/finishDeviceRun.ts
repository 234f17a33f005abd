import type { CliContext } from "./context";
import type { DeviceRunner } from "../consumer/deviceRunner";
import { formatVersion } from "../core/version";

/**
 * The end of `device run` and `fleet simulate`: with --once, retries what is pending and stops;
 * otherwise runs until stopped (SIGINT, SIGTERM). Then prints each device's status.
 */
export async function finishDeviceRun(ctx: CliContext, runner: DeviceRunner, once?: boolean): Promise<void> {
  if (!once) {
    ctx.io.stderr(`running ${runner.agents.length} device agent(s); Ctrl-C stops\n`);
    await ctx.untilStopped();
  } else {
    await Promise.all(runner.agents.map((a) => a.retryPending()));
  }
  await runner.stop();
  const reports = await Promise.all(runner.agents.map((a) => a.statusReport()));
  ctx.output(
    { devices: reports },
    reports
      .map(
        (r) =>
          `${r.deviceId.slice(0, 10)}…  ${r.installed.map((i) => `${i.component.slice(0, 10)}… ${formatVersion(BigInt(i.version))} (slot ${i.slot})`).join(", ") || "nothing installed"}${r.lastResult ? `  last: ${r.lastResult.outcome} ${r.lastResult.code}` : ""}${r.safeMode ? "  SAFE MODE" : ""}`,
      )
      .join("\n"),
  );
}
