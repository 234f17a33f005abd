import { CommanderError } from "commander";
import { isError, type ErrorDescription } from "ethers";
import { InputError, OtaError } from "../core/errors";
import { decodeRevert } from "../chain/revertReason";
import { REVERT_EXPLANATIONS, REVERT_INTERFACES } from "./revertHints";
import { jsonValue, type CliIo } from "./io";

/** Exit codes: the operation failed (1), or the command line or configuration is wrong (2). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** An error as the CLI reports it. */
export interface Report {
  code: string;
  message: string;
  hint?: string;
  details: Record<string, unknown>;
  exitCode: number;
}

/** Classifies any thrown value: usage, a decoded contract revert, our own errors, ethers' errors. */
export function describeError(err: unknown): Report {
  if (err instanceof CommanderError) {
    return {
      code: "USAGE",
      // "(outputHelp)" means commander printed the help because a subcommand is missing.
      message: err.code === "commander.help" ? "a subcommand is missing (see the list above)" : err.message.replace(/^error: /, ""),
      hint: "see ota-ledger --help, or ota-ledger <command> --help",
      details: { commander: err.code },
      exitCode: EXIT.usage,
    };
  }
  const revert = decodeRevert(err, REVERT_INTERFACES);
  if (revert) return describeRevert(revert);
  if (err instanceof OtaError) {
    const { hint, ...details } = err.details;
    return {
      code: err.code,
      message: err.message,
      hint: typeof hint === "string" ? hint : undefined,
      details,
      exitCode: err instanceof InputError ? EXIT.usage : EXIT.failed,
    };
  }
  if (isError(err, "CALL_EXCEPTION")) {
    return {
      code: "REVERTED",
      message: "the contract refused the call without a known reason",
      details: { reason: err.reason ?? null },
      exitCode: EXIT.failed,
    };
  }
  if (isError(err, "INSUFFICIENT_FUNDS")) {
    return {
      code: "INSUFFICIENT_FUNDS",
      message: "the account cannot pay for gas",
      hint: "fund the account of the configured key",
      details: {},
      exitCode: EXIT.failed,
    };
  }
  const e = err as { code?: unknown; shortMessage?: unknown; message?: unknown };
  return {
    code: typeof e?.code === "string" ? e.code : "UNEXPECTED",
    message: String(e?.shortMessage ?? e?.message ?? err),
    details: {},
    exitCode: EXIT.failed,
  };
}

export function printError(io: CliIo, json: boolean, report: Report): void {
  if (json) {
    const details = report.hint ? { ...report.details, hint: report.hint } : report.details;
    io.stdout(JSON.stringify({ error: { code: report.code, message: report.message, details } }, jsonValue, 2) + "\n");
    return;
  }
  io.stderr(`error [${report.code}]: ${report.message}\n`);
  if (report.hint) io.stderr(`hint: ${report.hint}\n`);
}

function describeRevert(revert: ErrorDescription): Report {
  const args: Record<string, unknown> = {};
  revert.fragment.inputs.forEach((input, i) => {
    const value = revert.args[i];
    args[input.name || String(i)] = typeof value === "bigint" ? value.toString() : value;
  });
  const call = `${revert.name}(${Object.values(args).join(", ")})`;
  const explained = REVERT_EXPLANATIONS[revert.name]?.(args);
  return {
    code: revert.name,
    message: explained ? `the ledger refused: ${explained.why} [${call}]` : `the ledger refused with ${call}`,
    hint: explained?.hint,
    details: { revert: revert.name, args },
    exitCode: EXIT.failed,
  };
}
