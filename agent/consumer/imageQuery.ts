import type { FleetRegistry } from "../chain/contracts";
import { openMessage, sealMessage, type Envelope } from "../crypto/sealedMessage";
import { moduleEncryptionKey, verifyModuleSender } from "../chain/trackerModules";
import { AuthenticationError } from "../core/errors";

export const QUERY_KIND = "image-query";
export const ANSWER_KIND = "image-answer";

/** A query about the device's image from a party without the right to ask (CAP-11.1-a-ii). */
export class ImageQueryRefused extends AuthenticationError {}

/**
 * Answers "what do you run?" only to a party that proves a legitimate right: a tracker module
 * registered (and not retired) on the ledger, whose registered signer signed the sealed query.
 * The answer is sealed to that module's registered public key, so only it can read it.
 */
export async function answerImageQuery<T>(
  fleet: FleetRegistry,
  query: Envelope,
  device: { id: string; privateKey: string },
  answer: () => Promise<T>,
  o: { now: number; maxAgeMs?: number; fromBlock?: number },
): Promise<Envelope> {
  const { message, signedBy } = openMessage<unknown>(query, device.privateKey, device.id, "account");
  if (message.kind !== QUERY_KIND) throw new ImageQueryRefused("QUERY_KIND", `a ${message.kind} message is not an image query`);
  await verifyModuleSender(fleet, message.from, signedBy, (code, text) => new ImageQueryRefused(`QUERY_${code}`, text));
  if (Math.abs(o.now - message.issuedAt) > (o.maxAgeMs ?? 60_000)) throw new ImageQueryRefused("QUERY_STALE", "the query is too old or from the future");
  const publicKey = await moduleEncryptionKey(fleet, message.from, o.fromBlock ?? 0);
  if (!publicKey) throw new ImageQueryRefused("QUERY_NOT_REGISTERED", `no registration of module ${message.from} was found`);
  return sealMessage(
    { kind: ANSWER_KIND, from: device.id, to: message.from, issuedAt: o.now, body: await answer() },
    { kind: "device", privateKey: device.privateKey },
    publicKey,
  );
}
