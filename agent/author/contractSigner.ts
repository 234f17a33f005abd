import { AbstractSigner, type Provider, type Signer, type TransactionRequest, type TypedDataDomain, type TypedDataField } from "ethers";
import { InputError } from "../core/errors";

/**
 * A release signer that is a contract (ERC-1271): the record is signed with `key`, and the
 * contract at `address`, registered as one of the provider's signers, is named as the signer. The
 * registry, and every device, then asks the contract whether it vouches for the signature. This
 * suits contracts that accept a signature of the EIP-712 digest by a key they trust (as
 * contracts/mocks/ERC1271SignerMock.sol does); a multisig that needs several signatures, or
 * signs a digest of its own, needs its own signing step.
 */
export class ContractSigner extends AbstractSigner {
  constructor(
    readonly address: string,
    private readonly key: Signer,
  ) {
    super(key.provider);
  }

  async getAddress(): Promise<string> {
    return this.address;
  }

  connect(provider: Provider | null): ContractSigner {
    return new ContractSigner(this.address, this.key.connect(provider));
  }

  signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    return this.key.signTypedData(domain, types, value);
  }

  signMessage(message: string | Uint8Array): Promise<string> {
    return this.key.signMessage(message);
  }

  signTransaction(_tx: TransactionRequest): Promise<string> {
    throw new InputError("CONTRACT_SIGNER", `the contract signer ${this.address} signs releases only; transactions are sent with the author's account`);
  }
}
