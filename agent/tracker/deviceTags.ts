import { AbiCoder, keccak256, toUtf8Bytes } from "ethers";
import { InputError } from "../core/errors";
import { labelToBytes32 } from "./fleetViews";
import { statusLeaf, type StatusRecord } from "../crypto/statusTree";
import { verifySortedProof } from "../crypto/merkle";

/**
 * Device tags and dynamic groups (issue 19, item 11): mutable key/value labels an administrator
 * puts on devices in the tracker (server module), and groups that are saved tag queries,
 * evaluated by the tracker whenever they are asked (so a device joins or leaves a group as its
 * tags change). Tags are the tracker's, not the ledger's: the ledger holds the device's enrolment
 * (network, region, hardware class), which queries can name too. Each device's tags are anchored
 * with its status (agent/tracker/statusRecords.ts, anchor format 2).
 */

export const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const TAG_VALUE = /^[A-Za-z0-9._:/@+-]{1,128}$/;
export const MAX_TAGS_PER_DEVICE = 32;
/** Keys a query reads from the device's enrolment on the ledger, never from tags. */
export const RESERVED_KEYS = ["network", "region", "hardware"] as const;
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_QUERY_LENGTH = 1024;
export const MAX_QUERY_TERMS = 32;
export const MAX_GROUPS = 1000;

export type Tags = Record<string, string>;

/** One term of a tag query. */
export type QueryTerm =
  { key: string; op: "="; value: string } | { key: string; op: "!="; value: string } | { key: string; op: "exists" } | { key: string; op: "absent" };

const fail = (code: string, message: string): never => {
  throw new InputError(code, message);
};

/** A tag key as it must be: TAG_INVALID (400) names the rule, TAG_KEY_RESERVED the keys queries read from the ledger. */
export function checkTagKey(key: unknown, where = "tag key"): string {
  if (typeof key !== "string" || !TAG_KEY.test(key))
    fail(
      "TAG_INVALID",
      `${where} ${JSON.stringify(key)?.slice(0, 80)} must be 1 to 64 characters: letters, digits, '.', '_', '-', starting with a letter or digit`,
    );
  if ((RESERVED_KEYS as readonly string[]).includes((key as string).toLowerCase()))
    fail("TAG_KEY_RESERVED", `${where} "${key as string}" is reserved: queries read ${RESERVED_KEYS.join(", ")} from the device's enrolment on the ledger`);
  return key as string;
}

export function checkTagValue(value: unknown, key: string): string {
  if (typeof value !== "string" || !TAG_VALUE.test(value))
    fail(
      "TAG_INVALID",
      `the value of tag "${key}" must be 1 to 128 characters: letters, digits and . _ : / @ + - (got ${JSON.stringify(value)?.slice(0, 80)}${
        typeof value === "string" && value.length > 80 ? "..." : ""
      })`,
    );
  return value as string;
}

/**
 * A tag query: terms joined by commas (and), each `key=value`, `key!=value` (the device has no
 * such tag, or another value), `key` (it has the tag) or `!key` (it has not). `network`,
 * `region` and `hardware` (a hardware class id) read the device's enrolment, with `=` and `!=`.
 * Anything else is QUERY_INVALID (400), naming the term.
 */
export function parseTagQuery(text: unknown): QueryTerm[] {
  if (typeof text !== "string" || text.trim() === "") fail("QUERY_INVALID", "a query is one or more terms joined by commas: k=v, k!=v, k, !k");
  const q = text as string;
  if (q.length > MAX_QUERY_LENGTH) fail("QUERY_INVALID", `a query is at most ${MAX_QUERY_LENGTH} characters`);
  const parts = q.split(",").map((p) => p.trim());
  if (parts.length > MAX_QUERY_TERMS) fail("QUERY_INVALID", `a query has at most ${MAX_QUERY_TERMS} terms`);
  return parts.map((p, i) => {
    const where = `query term ${i + 1} (${JSON.stringify(p.slice(0, 80))})`;
    const m = /^(!?)([^=!]+)(?:(!=|=)(.*))?$/.exec(p);
    if (!m) return fail("QUERY_INVALID", `${where}: a term is k=v, k!=v, k (has the tag) or !k (has it not)`);
    const [, not, rawKey, op, value] = m;
    const key = rawKey.trim();
    const reserved = (RESERVED_KEYS as readonly string[]).includes(key.toLowerCase());
    if (!TAG_KEY.test(key)) fail("QUERY_INVALID", `${where}: a key is 1 to 64 letters, digits, '.', '_' or '-'`);
    if (op === undefined) {
      if (reserved) fail("QUERY_INVALID", `${where}: ${key} is compared with = or !=`);
      return { key, op: not ? "absent" : "exists" } as QueryTerm;
    }
    if (not) fail("QUERY_INVALID", `${where}: write k!=v, not !k=v`);
    const v = value.trim();
    if (!TAG_VALUE.test(v)) fail("QUERY_INVALID", `${where}: a value is 1 to 128 letters, digits or . _ : / @ + -`);
    if (reserved) {
      const k = key.toLowerCase();
      if (k === "hardware" && !/^\d{1,5}$/.test(v)) fail("QUERY_INVALID", `${where}: hardware is a hardware class id (a number)`);
      if (k !== "hardware") labelToBytes32(v, where);
      return { key: k, op: op as "=" | "!=", value: v };
    }
    return { key, op: op as "=" | "!=", value: v };
  });
}

/** The query's text in one form (terms as given, trimmed, joined by ","): what a group keeps. */
export function formatTagQuery(terms: QueryTerm[]): string {
  return terms.map((t) => (t.op === "exists" ? t.key : t.op === "absent" ? `!${t.key}` : `${t.key}${t.op}${t.value}`)).join(",");
}

export function checkGroupName(name: unknown): string {
  if (typeof name !== "string" || !GROUP_NAME.test(name))
    fail("BAD_REQUEST", "a group name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit");
  return name as string;
}

/** The canonical encoding of a device's tags: sorted by key, as a JSON array of [key, value]. */
export function canonicalTags(tags: Tags): string {
  return JSON.stringify(
    Object.keys(tags)
      .sort()
      .map((k) => [k, tags[k]]),
  );
}

/**
 * The tags leaf of anchor format 2 (agent/tracker/statusRecords.ts): keccak256(keccak256(abi.encode(
 * "ota-ledger.device-tags.v1" hashed, deviceId, keccak256(canonicalTags)))). Three words, where a
 * status leaf has six, so neither is ever read as the other.
 */
export const TAGS_LEAF_DOMAIN = keccak256(toUtf8Bytes("ota-ledger.device-tags.v1"));
export function tagsHash(tags: Tags): string {
  return keccak256(toUtf8Bytes(canonicalTags(tags)));
}
export function tagsLeaf(deviceId: string, tags: Tags): string {
  return keccak256(keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "bytes32", "bytes32"], [TAGS_LEAF_DOMAIN, deviceId, tagsHash(tags)])));
}

/**
 * Whether `proof` (as GET /v1/anchors/:index/devices/:id answers it for an anchor of format 2)
 * shows these `tags` for the record's device under `root` (the anchor's statusRoot on the ledger):
 * its first element is the device's tags leaf, and the status leaf with the rest of the path leads
 * to the root. The status record itself is proven on the ledger by StatusAnchors.verifyStatus.
 */
export function verifyTagsProof(record: StatusRecord, tags: Tags, proof: string[], root: string): boolean {
  const leaf = tagsLeaf(record.deviceId, tags);
  if (proof.length === 0 || proof[0].toLowerCase() !== leaf.toLowerCase()) return false;
  return verifySortedProof(leaf, [statusLeaf(record), ...proof.slice(1)], root);
}
