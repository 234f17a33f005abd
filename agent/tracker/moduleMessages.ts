import { Wallet, getBytes, hashMessage } from "ethers";
import type { FleetRegistry } from "../chain/contracts";
import { callLedger } from "../chain/ledgerCall";
import { moduleEncryptionKey, trackerModuleOf as trackerModuleOnLedger } from "../chain/trackerModules";
import { AuthenticationError } from "../core/errors";
import { sealMessage, type Envelope, type MessageSigner } from "../crypto/sealedMessage";
import { signDigest } from "../crypto/secp256k1";
import type { UpdateNotice } from "../core/updateNotice";
import type { SignedReport } from "./reportIntake";
import type { MarkStore } from "./store/marks";

/** The kind of a child module's status to its parent (DownstreamStatus), and of the parent's answer (UpdateDecisions). */
export const DOWNSTREAM_KIND = "downstream-status";
export const DECISIONS_KIND = "update-decisions";

/** What a module tells the module above it (DEP-8.2.3, CAP-11.2-m). */
export interface DownstreamStatus {
  counter: number; // rises with every message: a replay is refused
  networks: string[]; // bytes32 network labels this module serves
  reports: SignedReport[]; // device reports as their devices signed them
  devices: number; // devices that reached the hierarchy through this module
  unreachableDevices: number;
  children: { id: string; lastSeen: number; reachable: boolean; devices: number; unreachableDevices: number }[];
}

/** What a module tells the module below it: start these updates. */
export interface UpdateDecisions {
  decisions: (UpdateNotice & { deviceId: string; origin: string })[];
  /** The counter of the child's status this answers: the child drops the reports it forwarded only on this signed word. */
  acknowledges: number;
}

/** A message from a module that is not this module's child or parent on the ledger, or is stale or replayed. */
export class ModuleMessageRefused extends AuthenticationError {}

/** A tracker module's registration on the ledger (FleetRegistry), or undefined when not registered or retired. */
export const trackerModuleOf = (fleet: FleetRegistry, id: string) => callLedger(() => trackerModuleOnLedger(fleet, id));

/** The mark below which this module issued its messages (notices, decisions, downstream statuses), and how far ahead it is reserved (ms). */
const ISSUED_MARK = "issued";
const ISSUE_RESERVE_MS = 10_000;

/**
 * A tracker module's messages (DEP-8.2.3): sealed and signed with its registered signer, issued at
 * strictly rising times (over restarts too), sealed to other modules' registered keys, and
 * checked for freshness when they come from other modules.
 */
export class ModuleMessages {
  readonly wallet: Wallet;
  private lastIssuedAt = 0;
  private issuedReserved = 0;
  private readonly keys = new Map<string, string>(); // module id -> registered public key

  constructor(
    private readonly deps: {
      id: string;
      privateKey: string;
      marks: MarkStore;
      fleet: FleetRegistry;
      fromBlock: number;
      now: () => number;
      maxMessageAgeMs: number;
    },
  ) {
    this.wallet = new Wallet(deps.privateKey);
  }

  /** Signs this module's messages with its registered signer (EIP-191). */
  private get signer(): MessageSigner {
    // EIP-191 as Wallet.signMessage, with the native curve code: a notice is sealed per device.
    const key = getBytes(this.wallet.privateKey);
    return { kind: "account", signMessage: async (m: string) => signDigest(key, getBytes(hashMessage(m))) };
  }

  /** A message of this module to `to`, sealed to `key`, issued now (or at `issuedAt`, strictly rising). */
  seal<T>(kind: string, to: string, body: T, key: string, issuedAt = this.issuedAt()): Promise<Envelope> {
    return sealMessage({ kind, from: this.deps.id, to, issuedAt, body }, this.signer, key);
  }

  /** Strictly rising issue times, so that a device takes each of several notices of one answer. */
  issuedAt(): number {
    // Rising over restarts too (devices and the parent refuse a message not newer than the last):
    // the database holds a mark ISSUE_RESERVE_MS ahead, written once per that span, not per message.
    if (this.lastIssuedAt === 0) this.lastIssuedAt = this.deps.marks.get(ISSUED_MARK);
    this.lastIssuedAt = Math.max(this.deps.now(), this.lastIssuedAt + 1);
    if (this.lastIssuedAt >= this.issuedReserved) {
      this.issuedReserved = this.lastIssuedAt + ISSUE_RESERVE_MS;
      this.deps.marks.raise(ISSUED_MARK, this.issuedReserved);
    }
    return this.lastIssuedAt;
  }

  /** The key another module's messages are sealed to, as registered on the ledger (kept once read). */
  async moduleKey(moduleId: string): Promise<string> {
    const cached = this.keys.get(moduleId);
    if (cached) return cached;
    const key = await moduleEncryptionKey(this.deps.fleet, moduleId, this.deps.fromBlock);
    if (!key) throw new ModuleMessageRefused("MODULE_NOT_REGISTERED", `no registration of module ${moduleId} was found on the ledger`);
    this.keys.set(moduleId, key);
    return key;
  }

  /** Refuses a message of another module issued too far from now (MESSAGE_STALE). */
  checkFresh(issuedAt: number): void {
    if (Math.abs(this.deps.now() - issuedAt) > this.deps.maxMessageAgeMs)
      throw new ModuleMessageRefused("MESSAGE_STALE", `the message was issued at ${issuedAt}, too far from ${this.deps.now()}`);
  }
}
