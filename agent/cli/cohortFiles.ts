import { promises as fs } from "node:fs";
import path from "node:path";
import { InputError } from "../core/errors";
import { parseIdOrLabel } from "./parse";

/**
 * The devices files of a staged rollout's waves, as administrators write them: one device id or
 * label per line (blank lines and # comments ignored), or a JSON array of ids and labels. A wave on
 * the command line is `<file>[@<start>]`.
 */

/** The device ids of a devices file's text, in the order given; each device once. */
export function parseDevicesList(text: string, file: string): string[] {
  const entries: { value: string; where: string }[] = [];
  if (text.trimStart().startsWith("[")) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw new InputError(
        "DEVICES_FILE_INVALID",
        `devices file ${file} starts with [ but is not JSON (${(cause as Error).message}): give a JSON array of device ids or labels, or one per line`,
        { cause },
      );
    }
    if (!Array.isArray(raw) || !raw.every((v) => typeof v === "string")) {
      throw new InputError("DEVICES_FILE_INVALID", `devices file ${file} must be a JSON array of strings (device ids or labels)`);
    }
    raw.forEach((value: string, i) => entries.push({ value, where: `${file} item ${i}` }));
  } else {
    text.split(/\r?\n/).forEach((line, i) => {
      const value = line.replace(/#.*$/, "").trim();
      if (value !== "") entries.push({ value, where: `${file} line ${i + 1}` });
    });
  }
  if (entries.length === 0)
    throw new InputError("DEVICES_FILE_EMPTY", `devices file ${file} lists no device: give one device id or label per line`, { details: { file } });
  const seen = new Map<string, string>();
  return entries.map(({ value, where }) => {
    const id = parseIdOrLabel(value, where);
    const first = seen.get(id);
    if (first)
      throw new InputError("DEVICES_FILE_DUPLICATE", `${where}: device ${value} is already listed at ${first}: list each device of a wave once`, {
        details: { file, deviceId: id },
      });
    seen.set(id, where);
    return id;
  });
}

/** Reads a devices file (relative to `cwd`). */
export async function readDevicesFile(cwd: string, file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(path.resolve(cwd, file), "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new InputError("DEVICES_FILE_UNREADABLE", `devices file ${file} cannot be read (${code ?? (cause as Error).message}): check the path`, {
      cause,
      details: { file },
    });
  }
  return parseDevicesList(text, file);
}

/** `<file>[@<start>]`: the devices file and the start time as written (the last @ separates them). */
export function parseWaveOption(text: string): { file: string; start?: string } {
  const at = text.lastIndexOf("@");
  const file = at < 0 ? text : text.slice(0, at);
  const start = at < 0 ? undefined : text.slice(at + 1);
  if (file.trim() === "") throw new InputError("INVALID_INPUT", `--wave "${text}": the devices file is missing: give <devices-file>[@<start>]`);
  if (start !== undefined && start.trim() === "")
    throw new InputError("INVALID_INPUT", `--wave "${text}": the start after @ is empty: give an ISO-8601 time, now, or +<n>s|m|h|d`);
  return { file, start };
}
