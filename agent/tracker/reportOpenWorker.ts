/**
 * Worker thread for ReportIntake: opens sealed status reports (ECIES with the module's key) and
 * recovers each one's signer, the two secp256k1 operations that cost most of a report's intake,
 * on another core. The module's key comes in workerData; the checks against the fleet database
 * stay on the main thread. Out first: {ready: true} once loaded. Messages in: {id, envelopes}.
 * Out: {id, results}, each result the opened message with its signer, or the error openMessage
 * threw (name, code, message).
 */
import { parentPort, workerData } from "node:worker_threads";
import { openMessage, type Envelope } from "../crypto/sealedMessage";

const { moduleId, privateKey } = workerData as { moduleId: string; privateKey: string };
const port = parentPort!;

port.on("message", (m: { id: number; envelopes: Envelope[] }) => {
  const results = m.envelopes.map((envelope) => {
    try {
      return { opened: openMessage(envelope, privateKey, moduleId, "device") };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { error: { name: e.name, code: e.code, message: e.message } };
    }
  });
  port.postMessage({ id: m.id, results });
});
port.postMessage({ ready: true });
