/**
 * An RPC endpoint as messages show it: its origin, and "/…" for a path or query, which providers
 * often use for the API key (https://eth-sepolia.example.com/v2/<key> shows as https://eth-sepolia.example.com/…).
 */
export function shownEndpoint(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === "/" && u.search === "" ? u.origin : `${u.origin}/…`;
  } catch {
    return "(an unparsable URL)";
  }
}
