/**
 * An independent oracle for tests: the CIDv1 of a single raw block, encoded by hand.
 */
/** CIDv1, codec raw (0x55), multihash sha2-256 (0x12, 32 bytes), multibase base32 ("b"). */
export function rawCidV1(sha256Digest: Buffer): string {
  return "b" + base32(Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), sha256Digest]));
}

function base32(data: Buffer): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}
