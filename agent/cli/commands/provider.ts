import type { Command } from "commander";
import type { CliContext } from "../context";
import { parseAddress, parseId, parseName, parseReason } from "../parse";
import { confirm, describeTx, findEvent } from "../transactions";

/** Administrators' commands on providers: register, signing keys, authors, bars. */
export function register(program: Command, ctx: CliContext): void {
  const provider = program.command("provider").description("firmware providers, their signing keys and authors");

  provider
    .command("register <name>")
    .description("register a provider; prints its id")
    .action(async (nameText: string) => {
      const name = parseName(nameText, "provider name");
      const { registry } = await ctx.connect();
      const { receipt, tx } = await confirm(registry.registerProvider(name));
      const id = Number(findEvent(receipt, registry, "ProviderRegistered").args.provider);
      ctx.output({ provider: { id, name }, tx }, `registered provider ${id} "${name}"\n${describeTx(tx)}`);
    });

  provider
    .command("show <providerId>")
    .description("a provider's name and whether it is barred")
    .action(async (idText: string) => {
      const id = parseId(idText, "provider id");
      const { registry } = await ctx.connectReadOnly();
      const [name, barred] = (await registry.getFunction("provider")(id)) as [string, boolean];
      ctx.output({ provider: { id, name, barred } }, `provider ${id} "${name}"\n  barred  ${barred ? "yes" : "no"}`);
    });

  const signer = provider.command("signer").description("keys that may sign a provider's releases");
  for (const [action, verb] of [
    ["add", "may now sign"],
    ["remove", "may no longer sign"],
  ] as const) {
    signer
      .command(`${action} <providerId> <address>`)
      .description(`${action === "add" ? "allow" : "withdraw"} a release-signing key (an EOA or an ERC-1271 contract)`)
      .action(async (idText: string, addressText: string) => {
        const id = parseId(idText, "provider id");
        const address = parseAddress(addressText, "signer address");
        const { registry } = await ctx.connect();
        const sent = action === "add" ? registry.addProviderSigner(id, address) : registry.removeProviderSigner(id, address);
        const { tx } = await confirm(sent);
        ctx.output({ provider: id, signer: address, action, tx }, `${address} ${verb} releases of provider ${id}\n${describeTx(tx)}`);
      });
  }

  const author = provider.command("author").description("accounts that publish a provider's releases");
  author
    .command("add <address>")
    .description("make an account an author of a provider")
    .requiredOption("--provider <id>", "the provider it publishes for")
    .action(async (addressText: string, options: { provider: string }) => {
      const address = parseAddress(addressText, "author address");
      const id = parseId(options.provider, "--provider");
      const { registry } = await ctx.connect();
      const { tx } = await confirm(registry.registerAuthor(address, id));
      ctx.output({ author: address, provider: id, action: "add", tx }, `${address} is now an author of provider ${id}\n${describeTx(tx)}`);
    });
  author
    .command("remove <address>")
    .description("withdraw an account's author role")
    .action(async (addressText: string) => {
      const address = parseAddress(addressText, "author address");
      const { registry } = await ctx.connect();
      const { receipt, tx } = await confirm(registry.removeAuthor(address));
      const id = Number(findEvent(receipt, registry, "AuthorRemoved").args.provider);
      ctx.output({ author: address, provider: id, action: "remove", tx }, `${address} is no longer an author of provider ${id}\n${describeTx(tx)}`);
    });

  provider
    .command("bar <providerId>")
    .description("bar a provider from publishing (CAP-11.3-c)")
    .requiredOption("--reason <text>", "why, recorded on the ledger")
    .action(async (idText: string, options: { reason: string }) => {
      const id = parseId(idText, "provider id");
      const reason = parseReason(options.reason);
      const { registry } = await ctx.connect();
      const { tx } = await confirm(registry.barProvider(id, reason));
      ctx.output({ provider: id, barred: true, reason, tx }, `provider ${id} is barred: ${reason}\n${describeTx(tx)}`);
    });

  provider
    .command("unbar <providerId>")
    .description("lift the bar on a provider")
    .action(async (idText: string) => {
      const id = parseId(idText, "provider id");
      const { registry } = await ctx.connect();
      const { tx } = await confirm(registry.unbarProvider(id));
      ctx.output({ provider: id, barred: false, tx }, `provider ${id} is no longer barred\n${describeTx(tx)}`);
    });
}
