import type { Command } from "commander";
import { NonceManager } from "ethers";
import type { CliContext } from "../context";
import { parseAddress, parseId, parseName, parsePastTime, parseReason } from "../parse";
import { confirm, describeTx, findEvent } from "../transactions";
import { InputError } from "../../core/errors";
import { formatVersion } from "../../core/version";
import { fetchReleases } from "../../chain/releaseEvents";
import { maySign, type SignerTerm } from "../../chain/provenFacts";
import type { UpdateRegistry } from "../../chain/contracts";

/** A key's term with a provider, as the registry holds it. */
async function signerTerm(registry: UpdateRegistry, providerId: number, signer: string): Promise<SignerTerm> {
  const [ordinal, addedAt, retiredAt, compromised, compromisedSince] = await registry.providerSignerTerm(providerId, signer);
  return { ordinal: Number(ordinal), addedAt: Number(addedAt), retiredAt: Number(retiredAt), compromised, compromisedSince: Number(compromisedSince) };
}

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
      .description(`${action === "add" ? "allow" : "retire (as provider signer retire)"} a release-signing key (an EOA or an ERC-1271 contract)`)
      .action(async (idText: string, addressText: string) => {
        const id = parseId(idText, "provider id");
        const address = parseAddress(addressText, "signer address");
        const { registry } = await ctx.connect();
        const sent = action === "add" ? registry.addProviderSigner(id, address) : registry.removeProviderSigner(id, address);
        const { tx } = await confirm(sent);
        ctx.output({ provider: id, signer: address, action, tx }, `${address} ${verb} releases of provider ${id}\n${describeTx(tx)}`);
      });
  }

  signer
    .command("show <providerId> <address>")
    .description("a key's term with a provider: when it was added and retired, and whether as compromised")
    .action(async (idText: string, addressText: string) => {
      const id = parseId(idText, "provider id");
      const address = parseAddress(addressText, "signer address");
      const { registry } = await ctx.connectReadOnly();
      const t = await signerTerm(registry, id, address);
      const when = (s: number) => (s === 0 ? "-" : new Date(s * 1000).toISOString());
      ctx.output(
        { provider: id, signer: address, ...t, maySign: maySign(t) },
        t.ordinal === 0
          ? `${address} was never a signing key of provider ${id}`
          : [
              `signing key ${t.ordinal} of provider ${id}: ${address}`,
              `  added        ${when(t.addedAt)}`,
              `  retired      ${when(t.retiredAt)}`,
              `  compromised  ${t.compromised ? `since ${when(t.compromisedSince)}: what it signed from then on is invalid` : "no"}`,
            ].join("\n"),
      );
    });

  signer
    .command("rotate <providerId> <oldAddress> <newAddress>")
    .description("add a new release-signing key, then retire the old one: the old one's releases stay valid (docs/adr/0016)")
    .action(async (idText: string, oldText: string, newText: string) => {
      const id = parseId(idText, "provider id");
      const oldKey = parseAddress(oldText, "old signer address");
      const newKey = parseAddress(newText, "new signer address");
      if (oldKey === newKey)
        throw new InputError("INVALID_INPUT", `the old and the new key are both ${oldKey}: give the key to retire, then the key that replaces it`);
      const { registry: writable, signer: account } = await ctx.connect();
      // Two transactions in a row: count nonces here (ethers caches an identical nonce answer briefly).
      const registry = writable.connect(new NonceManager(account));
      // Both steps are checked before the first is sent, so a rotation never stops half way on bad input.
      const [before, next] = await Promise.all([signerTerm(registry, id, oldKey), signerTerm(registry, id, newKey)]);
      if (!maySign(before))
        throw new InputError(
          "SIGNER_NOT_ACTIVE",
          `${oldKey} is not a key that may sign releases of provider ${id} now${before.ordinal === 0 ? "" : " (retired already)"}: nothing to rotate from`,
          {
            details: {
              provider: id,
              signer: oldKey,
              hint: `see ota-ledger provider signer show ${id} <address>; to add a key alone: ota-ledger provider signer add ${id} <address>`,
            },
          },
        );
      if (next.compromised)
        throw new InputError("SIGNER_COMPROMISED", `${newKey} was retired as compromised for provider ${id}: it never signs again`, {
          details: { provider: id, signer: newKey, hint: "rotate to a freshly generated key" },
        });
      if (maySign(next))
        throw new InputError(
          "SIGNER_ALREADY_ACTIVE",
          `${newKey} already signs releases of provider ${id}: to retire ${oldKey} alone, use provider signer retire`,
          {
            details: { provider: id, signer: newKey },
          },
        );
      // The new key first: there is no moment when the provider has no key (and no release that could not be signed).
      const { tx: added } = await confirm(registry.addProviderSigner(id, newKey));
      let retired;
      try {
        ({ tx: retired } = await confirm(registry.removeProviderSigner(id, oldKey)));
      } catch (err) {
        ctx.io.stderr(
          `${newKey} now signs releases of provider ${id} (${describeTx(added)}), but ${oldKey} was not retired: both sign until you run ota-ledger provider signer retire ${id} ${oldKey}\n`,
        );
        throw err;
      }
      ctx.output(
        { provider: id, retired: oldKey, added: newKey, action: "rotate", tx: { added, retired } },
        `${newKey} now signs releases of provider ${id}\n${describeTx(added)}\n${oldKey} is retired: it signs no new release; the releases it signed stay valid\n${describeTx(retired)}`,
      );
    });

  signer
    .command("retire <providerId> <address>")
    .description("retire a release-signing key; with --compromised-since, as compromised: what it signed from then on is invalid")
    .option("--compromised-since <time>", "when the key was first exposed: an ISO-8601 time with its offset, now, or -<n>s|m|h|d (an administrator or auditor)")
    .action(async (idText: string, addressText: string, options: { compromisedSince?: string }) => {
      const id = parseId(idText, "provider id");
      const address = parseAddress(addressText, "signer address");
      const { registry, provider: chain, domain, fromBlock } = await ctx.connect();
      const t = await signerTerm(registry, id, address);
      if (options.compromisedSince === undefined) {
        if (!maySign(t))
          throw new InputError("SIGNER_NOT_ACTIVE", `${address} is not a key that may sign releases of provider ${id} now: nothing to retire`, {
            details: { provider: id, signer: address, hint: `see ota-ledger provider signer show ${id} ${address}` },
          });
        const { tx } = await confirm(registry.removeProviderSigner(id, address));
        ctx.output(
          { provider: id, signer: address, action: "retire", tx },
          `${address} is retired from provider ${id}: it signs no new release; the releases it signed stay valid\n${describeTx(tx)}`,
        );
        return;
      }
      const head = await chain.getBlock("latest");
      const since = parsePastTime(options.compromisedSince, head!.timestamp, "--compromised-since");
      if (t.ordinal === 0)
        throw new InputError("SIGNER_NOT_AUTHORIZED", `${address} was never a signing key of provider ${id}`, { details: { provider: id, signer: address } });
      if (t.compromised && since >= t.compromisedSince)
        throw new InputError(
          "SIGNER_COMPROMISED",
          `${address} is already retired as compromised since ${new Date(t.compromisedSince * 1000).toISOString()}: only an earlier time can be given`,
          { details: { provider: id, signer: address, compromisedSince: t.compromisedSince } },
        );
      const { tx } = await confirm(registry.retireCompromisedSigner(id, address, since));
      // What it invalidates: the provider's releases this key signed from the compromise time on.
      const invalid = (await fetchReleases(registry, domain, fromBlock))
        .filter((r) => r.record.provider === id && r.signer.toLowerCase() === address.toLowerCase() && r.releasedAt >= since)
        .map((r) => ({ id: r.id, component: r.record.component, version: formatVersion(r.record.version), publishedAt: r.releasedAt }));
      ctx.output(
        { provider: id, signer: address, action: "retire", compromisedSince: since, invalidated: invalid, tx },
        [
          `${address} is retired from provider ${id} as compromised since ${new Date(since * 1000).toISOString()}`,
          invalid.length === 0
            ? "  no release it signed was published since then"
            : `  ${invalid.length} release(s) it signed since then are now invalid (devices refuse them; revoke them to take them out of the views):`,
          ...invalid.map((r) => `    ${r.id}  ${r.version}  published ${new Date(r.publishedAt * 1000).toISOString()}`),
          describeTx(tx),
        ].join("\n"),
      );
    });

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
