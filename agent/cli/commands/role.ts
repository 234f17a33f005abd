import type { Command } from "commander";
import { ZeroAddress, id as keccakText } from "ethers";
import type { UpdateRegistry } from "../../chain/contracts";
import type { CliContext } from "../context";
import { InputError, OtaError } from "../../core/errors";
import { parseAddress } from "../parse";
import { confirm, describeTx } from "../transactions";

/**
 * The roles that `role grant` and `role revoke` manage, and who administers each (RegistryAccess.sol):
 * the default admin grants administrators; administrators grant auditors and trackers. Authors are
 * bound to a provider, so `provider author add` makes them, not this command.
 */
const ROLES = {
  administrator: { role: keccakText("ADMINISTRATOR_ROLE"), name: "ADMINISTRATOR_ROLE", grantedBy: "the default admin" },
  auditor: { role: keccakText("AUDITOR_ROLE"), name: "AUDITOR_ROLE", grantedBy: "an administrator" },
  tracker: { role: keccakText("TRACKER_ROLE"), name: "TRACKER_ROLE", grantedBy: "an administrator" },
} as const;
type RoleName = keyof typeof ROLES;
const AUTHOR_ROLE = keccakText("AUTHOR_ROLE");
const DEFAULT_ADMIN_ROLE = "0x" + "00".repeat(32);

/** Administrators' commands on the registry's roles, and the two-step handover of the default admin. */
export function register(program: Command, ctx: CliContext): void {
  const role = program.command("role").description("the registry's roles: administrator, auditor, tracker; the default admin and its two-step handover");

  role
    .command("grant <role> <address>")
    .description(`give an account a role (${Object.keys(ROLES).join(", ")}); nothing is sent if it holds it already`)
    .action(async (roleText: string, addressText: string) => grantRoleTo(ctx, roleText, addressText));

  role
    .command("revoke <role> <address>")
    .description("take a role from an account; nothing is sent if it does not hold it")
    .action(async (roleText: string, addressText: string) => {
      const { role: hash, name } = parseRole(roleText);
      const account = parseAddress(addressText, "account");
      const { registry, signer } = await ctx.connect();
      if (!(await registry.hasRole(hash, account))) {
        ctx.output({ account, role: name, revoked: false, held: false }, `${account} does not hold ${name}: nothing sent`);
        return;
      }
      await requireRoleAdmin(registry, roleText as RoleName, signer.address);
      const { tx } = await confirm(registry.revokeRole(hash, account));
      ctx.output({ account, role: name, revoked: true, held: true, tx }, `${account} no longer holds ${name}\n${describeTx(tx)}`);
    });

  role
    .command("show <address>")
    .description("the roles an account holds")
    .action(async (addressText: string) => {
      const account = parseAddress(addressText, "account");
      const { registry } = await ctx.connectReadOnly();
      const held: string[] = [];
      if ((await registry.defaultAdmin()).toLowerCase() === account.toLowerCase()) held.push("DEFAULT_ADMIN");
      for (const { role: hash, name } of Object.values(ROLES)) if (await registry.hasRole(hash, account)) held.push(name);
      let authorOf: number | undefined;
      if (await registry.hasRole(AUTHOR_ROLE, account)) {
        held.push("AUTHOR_ROLE");
        authorOf = Number(await registry.authorProvider(account));
      }
      const human = `${account}\n  roles  ${held.length === 0 ? "none" : held.join(", ")}` + (authorOf ? `\n  author of provider ${authorOf}` : "");
      ctx.output({ account, roles: held, ...(authorOf ? { authorOf } : {}) }, human);
    });

  const admin = role.command("admin").description("the default admin: one account, handed over in two steps with a delay");

  admin
    .command("show")
    .description("the default admin, the handover delay and any handover under way")
    .action(async () => {
      const { registry } = await ctx.connectReadOnly();
      const [current, delay, [pending, schedule]] = await Promise.all([registry.defaultAdmin(), registry.defaultAdminDelay(), registry.pendingDefaultAdmin()]);
      const handover = pending === ZeroAddress ? null : { to: pending, acceptableFrom: new Date(Number(schedule) * 1000).toISOString() };
      ctx.output(
        { defaultAdmin: current, delaySeconds: Number(delay), pending: handover },
        [
          `default admin  ${current}`,
          `delay          ${Number(delay)} s`,
          `handover       ${handover ? `to ${handover.to}, who may accept from ${handover.acceptableFrom}` : "none"}`,
        ].join("\n"),
      );
    });

  admin
    .command("transfer <address>")
    .description("start handing the default admin over (step 1, by the default admin); the new account accepts after the delay")
    .action(async (addressText: string) => {
      const to = parseAddress(addressText, "new admin");
      const { registry, signer } = await ctx.connect();
      await requireDefaultAdmin(registry, signer.address);
      const { tx } = await confirm(registry.beginDefaultAdminTransfer(to));
      const [, schedule] = await registry.pendingDefaultAdmin();
      const from = new Date(Number(schedule) * 1000).toISOString();
      ctx.output(
        { pending: to, acceptableFrom: from, tx },
        `handover of the default admin to ${to} started; it accepts (ota-ledger role admin accept, with its key) from ${from}\n${describeTx(tx)}`,
      );
    });

  admin
    .command("accept")
    .description("accept the default admin (step 2, by the new account, once the delay has passed); administrator moves with it")
    .action(async () => {
      const { registry, signer, provider } = await ctx.connect();
      const [pending, schedule] = await registry.pendingDefaultAdmin();
      if (pending.toLowerCase() !== signer.address.toLowerCase()) {
        throw new OtaError(
          "NOT_PENDING_ADMIN",
          pending === ZeroAddress
            ? "no handover of the default admin is under way: the default admin starts one (ota-ledger role admin transfer <address>)"
            : `the handover is to ${pending}, not to ${signer.address}: accept with that account's key`,
          { details: { pending, account: signer.address } },
        );
      }
      const now = (await provider.getBlock("latest"))!.timestamp;
      if (now <= Number(schedule)) {
        throw new OtaError(
          "HANDOVER_NOT_DUE",
          `the handover may be accepted after ${new Date(Number(schedule) * 1000).toISOString()} (the chain's time is ${new Date(now * 1000).toISOString()}): try again then`,
          { details: { acceptableFrom: Number(schedule), now } },
        );
      }
      const { tx } = await confirm(registry.acceptDefaultAdminTransfer());
      ctx.output({ defaultAdmin: signer.address, tx }, `${signer.address} is now the default admin and an administrator\n${describeTx(tx)}`);
    });

  admin
    .command("cancel")
    .description("cancel a handover under way (by the default admin)")
    .action(async () => {
      const { registry, signer } = await ctx.connect();
      await requireDefaultAdmin(registry, signer.address);
      const [pending] = await registry.pendingDefaultAdmin();
      if (pending === ZeroAddress) {
        ctx.output({ cancelled: false }, "no handover is under way: nothing sent");
        return;
      }
      const { tx } = await confirm(registry.cancelDefaultAdminTransfer());
      ctx.output({ cancelled: true, was: pending, tx }, `the handover to ${pending} is cancelled\n${describeTx(tx)}`);
    });
}

/** Grants a role (`role grant`, and `tracker grant` for TRACKER_ROLE): refused before sending unless the sender may; nothing sent if held. */
export async function grantRoleTo(ctx: CliContext, roleText: string, addressText: string): Promise<void> {
  const { role: hash, name } = parseRole(roleText);
  const account = parseAddress(addressText, "account");
  const { registry, signer } = await ctx.connect();
  if (await registry.hasRole(hash, account)) {
    ctx.output({ account, role: name, granted: false, alreadyHeld: true }, `${account} already holds ${name}: nothing sent`);
    return;
  }
  await requireRoleAdmin(registry, roleText as RoleName, signer.address);
  const { tx } = await confirm(registry.grantRole(hash, account));
  ctx.output({ account, role: name, granted: true, alreadyHeld: false, tx }, `${account} now holds ${name}\n${describeTx(tx)}`);
}

function parseRole(text: string): (typeof ROLES)[RoleName] {
  const key = text.trim().toLowerCase();
  if (key === "author") {
    throw new InputError("INVALID_INPUT", "authors belong to a provider: make one with `ota-ledger provider author add <address> --provider <id>`");
  }
  if (!(key in ROLES)) {
    throw new InputError("INVALID_INPUT", `role: "${text}" is not a role; choose one of ${Object.keys(ROLES).join(", ")}`, { details: { role: text } });
  }
  return ROLES[key as RoleName];
}

/** Refuses before sending when `account` may not grant or revoke `role`. */
async function requireRoleAdmin(registry: UpdateRegistry, role: RoleName, account: string): Promise<void> {
  const { role: hash, name, grantedBy } = ROLES[role.trim().toLowerCase() as RoleName];
  const adminRole = await registry.getRoleAdmin(hash);
  const allowed =
    adminRole === DEFAULT_ADMIN_ROLE ? (await registry.defaultAdmin()).toLowerCase() === account.toLowerCase() : await registry.hasRole(adminRole, account);
  if (!allowed) {
    throw new OtaError(
      "NOT_ROLE_ADMIN",
      `the account ${account} may not grant or revoke ${name}: only ${grantedBy} may; send with that key (OTA_PRIVATE_KEY or keyFile)`,
      {
        details: { account, role: name },
      },
    );
  }
}

async function requireDefaultAdmin(registry: UpdateRegistry, account: string): Promise<void> {
  const current = await registry.defaultAdmin();
  if (current.toLowerCase() !== account.toLowerCase()) {
    throw new OtaError("NOT_DEFAULT_ADMIN", `only the default admin (${current}) may start or cancel its handover; ${account} is not it`, {
      details: { account, defaultAdmin: current },
    });
  }
}
