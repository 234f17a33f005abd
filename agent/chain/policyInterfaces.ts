import { Contract, Interface, isError, type Provider } from "ethers";
import { IUpdatePolicy__factory } from "./contracts";

/**
 * What a contract says of itself through ERC-165: the tools recognise an update policy, and a
 * policy that names its reason codes, by the interfaces it declares (the policy kit,
 * contracts/policies/UpdatePolicyBase.sol), not by calling it with made-up inputs.
 */

/** ERC-165's own interface id. */
export const ERC165_ID = "0x01ffc9a7";
/** IUpdatePolicy's interface id: its one function's selector. */
export const UPDATE_POLICY_ID = IUpdatePolicy__factory.createInterface().getFunction("check").selector;
/** IUpdatePolicyReasons (reasonName(uint256) returns (string)). */
export const POLICY_REASONS = new Interface(["function reasonName(uint256 reason) view returns (string)"]);
export const POLICY_REASONS_ID = POLICY_REASONS.getFunction("reasonName")!.selector;

const ERC165 = new Interface(["function supportsInterface(bytes4 interfaceId) view returns (bool)"]);

/** A call the contract refused, or answered with data that does not decode: not an RPC failure. */
export function isRefusedCall(err: unknown): boolean {
  return isError(err, "CALL_EXCEPTION") || isError(err, "BAD_DATA");
}

/**
 * Whether the contract declares `interfaceId` through ERC-165: "yes", "no" (it implements ERC-165
 * and not that interface), or "silent" (no ERC-165). An RPC failure is thrown.
 */
export async function declaresInterface(provider: Provider, address: string, interfaceId: string): Promise<"yes" | "no" | "silent"> {
  const c = new Contract(address, ERC165, provider);
  try {
    if ((await c.supportsInterface(interfaceId)) === true) return "yes";
    return (await c.supportsInterface(ERC165_ID)) === true ? "no" : "silent";
  } catch (err) {
    if (isRefusedCall(err)) return "silent";
    throw err;
  }
}
