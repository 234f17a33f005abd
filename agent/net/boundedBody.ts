import { OtaError } from "../core/errors";

/** An answer longer than its reader takes: refused before it is held in memory. */
export class AnswerTooLargeError extends OtaError {}

/**
 * Reads an HTTP answer's body, at most `maxBytes` of it: a longer one (by its content-length, or
 * once that many bytes have arrived) is refused with ANSWER_TOO_LARGE and the rest is not read.
 * Every answer a device reads from a peer it does not trust for availability goes through this, so
 * a server, a proxy or a tracker cannot grow the device's memory with a large answer.
 */
export async function readBoundedBody(
  res: Response,
  maxBytes: number,
  what: string,
  /** How each piece is read: a caller with its own idle timeout wraps reader.read() here. */
  read: (reader: ReadableStreamDefaultReader<Uint8Array>) => ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]> = (reader) => reader.read(),
): Promise<Buffer> {
  const tooLarge = (seen: string) =>
    new AnswerTooLargeError("ANSWER_TOO_LARGE", `${what}: the answer is ${seen}; this device reads at most ${maxBytes} bytes of it`, {
      details: { maxBytes, status: res.status },
    });
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(`${declared} bytes long`);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await read(reader);
      if (done) break;
      total += value.length;
      if (total > maxBytes) throw tooLarge(`over ${maxBytes} bytes`);
      parts.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(parts, total);
}

/** {@link readBoundedBody}, parsed as JSON; `undefined` when the body is not JSON. */
export async function readBoundedJson(res: Response, maxBytes: number, what: string): Promise<unknown> {
  const body = await readBoundedBody(res, maxBytes, what);
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}
