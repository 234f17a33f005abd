// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title ERC-1271 signer mock
/// @notice Test-only contract signer (e.g. a provider's multisig): a signature is valid when its
/// owner signed the digest.
contract ERC1271SignerMock is IERC1271 {
    /// @notice The EOA whose signatures this contract vouches for.
    address public immutable OWNER;

    constructor(address owner) {
        OWNER = owner;
    }

    /// @notice ERC-1271: the magic value when OWNER signed `digest`.
    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        return err == ECDSA.RecoverError.NoError && recovered == OWNER ? IERC1271.isValidSignature.selector : bytes4(0);
    }
}
