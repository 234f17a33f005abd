import type { Command } from "commander";
import type { CliContext } from "../context";
import { listHardwareClasses } from "../../chain/hardwareClasses";
import { parseName } from "../parse";
import { confirm, describeTx, findEvent } from "../transactions";

/** Hardware classes: the device types a release may support. */
export function register(program: Command, ctx: CliContext): void {
  const hardware = program.command("hardware").description("hardware classes (device types releases support)");

  hardware
    .command("register <name>")
    .description("register a hardware class, e.g. acme-board-rev-b; prints its id")
    .action(async (nameText: string) => {
      const name = parseName(nameText, "hardware class name");
      const { registry } = await ctx.connect();
      const { receipt, tx } = await confirm(registry.registerHardwareClass(name));
      const id = Number(findEvent(receipt, registry, "HardwareClassRegistered").args.hardwareClass);
      ctx.output({ hardwareClass: { id, name }, tx }, `registered hardware class ${id} "${name}"\n${describeTx(tx)}`);
    });

  hardware
    .command("list")
    .description("every registered hardware class")
    .action(async () => {
      const { registry } = await ctx.connectReadOnly();
      const classes = await listHardwareClasses(registry);
      const human = classes.length === 0 ? "no hardware classes registered" : classes.map((h) => `${String(h.id).padStart(5)}  ${h.name}`).join("\n");
      ctx.output({ hardwareClasses: classes }, human);
    });
}
