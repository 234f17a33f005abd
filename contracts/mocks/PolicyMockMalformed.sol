// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Update policy mock: a contract whose answer to a check is not one word
/// @notice Test-only. Any call succeeds and returns LENGTH zero bytes (e.g. a wrong contract
/// attached by mistake, with a fallback): its answer cannot be read as a reason.
contract PolicyMockMalformed {
    /// @notice How many bytes every call returns.
    uint256 public immutable LENGTH;

    constructor(uint256 length) {
        LENGTH = length;
    }

    /// @notice Returns LENGTH zero bytes, whatever the call.
    fallback(bytes calldata) external returns (bytes memory) {
        return new bytes(LENGTH);
    }
}
