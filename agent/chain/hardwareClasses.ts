import { InputError } from "../core/errors";
import type { UpdateRegistry } from "./contracts";

export interface HardwareClass {
  id: number;
  name: string;
}

/** Every registered hardware class (ids run from 1 to hardwareClassCount). */
export async function listHardwareClasses(registry: UpdateRegistry): Promise<HardwareClass[]> {
  const count = Number(await registry.hardwareClassCount());
  const ids = Array.from({ length: count }, (_, i) => i + 1);
  return Promise.all(ids.map(async (id) => ({ id, name: await registry.hardwareClass(id) })));
}

/**
 * Resolves a hardware class given as its id or its registered name, refusing one the registry
 * does not know, so a device is never enrolled against a missing class.
 */
export function resolveHardwareClass(text: string | number, known: HardwareClass[], what = "--hardware"): number {
  const value = String(text).trim();
  const found = /^\d+$/.test(value) ? known.find((h) => h.id === Number(value)) : known.find((h) => h.name === value);
  if (found) return found.id;
  const registered = known.length === 0 ? "none is registered yet" : `registered: ${known.map((h) => `${h.name} (${h.id})`).join(", ")}`;
  throw new InputError(
    "UNKNOWN_HARDWARE",
    `${what}: "${value}" is not a registered hardware class (${registered}): register it with \`ota-ledger hardware register <name>\` or give a registered name or id`,
    {
      details: { input: value },
    },
  );
}
