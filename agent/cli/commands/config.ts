import type { Command } from "commander";
import { Wallet } from "ethers";
import type { CliContext } from "../context";
import { redactConfig } from "../config";

/** The configuration as the CLI resolved it, to check where each value came from. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command("config")
    .description("the configuration")
    .command("show")
    .description("the resolved configuration (file, environment, options); the private key is never shown")
    .action(async () => {
      const config = await ctx.config();
      const account = config.privateKey ? new Wallet(config.privateKey).address : undefined;
      const shown = redactConfig(config, account);
      const human = Object.entries(shown)
        .map(([key, value]) => `${key.padEnd(12)} ${typeof value === "object" && value !== null ? JSON.stringify(value) : String(value ?? "(not set)")}`)
        .join("\n");
      ctx.output({ config: shown }, human);
    });
}
