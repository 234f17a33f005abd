import { promises as fs } from "node:fs";
import path from "node:path";
import { Wallet, type HDNodeWallet } from "ethers";
import { InputError, OtaError } from "../core/errors";

/**
 * A new random secp256k1 key written to `file` (resolved against `cwd`) with mode 0600, its
 * folder made if needed. An existing file is never overwritten: a key lost that way cannot be
 * had back, and the ledger may hold its public half.
 */
export async function writeNewKeyFile(cwd: string, file: string): Promise<{ keyFile: string; wallet: HDNodeWallet }> {
  const keyFile = path.resolve(cwd, file);
  const wallet = Wallet.createRandom();
  await fs.mkdir(path.dirname(keyFile), { recursive: true });
  try {
    await fs.writeFile(keyFile, wallet.privateKey + "\n", { flag: "wx", mode: 0o600 });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new InputError("KEY_FILE_EXISTS", `${keyFile} exists: a key is never overwritten; give another file or remove it yourself`);
    throw new OtaError("KEY_FILE_UNWRITABLE", `${keyFile} cannot be written (${code ?? (cause as Error).message}): fix the path`, { cause });
  }
  return { keyFile, wallet };
}
