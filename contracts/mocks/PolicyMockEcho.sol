// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";

/// @title Update policy mock: an answer that depends on everything it was given
/// @notice Test-only. A view cannot record its inputs, so its answer is a digest of them
/// (1..1000, never "allowed"): a test that computes the same digest off-chain shows that the
/// release, the device context and the evidence reached the policy exactly as given.
contract PolicyMockEcho is IUpdatePolicy {
    /// @inheritdoc IUpdatePolicy
    function check(bytes32 releaseId, bytes32 component, uint64 version, DeviceContext calldata device, bytes calldata evidence)
        external
        pure
        returns (uint256 reason)
    {
        return uint256(keccak256(abi.encode(releaseId, component, version, device, evidence))) % 1000 + 1;
    }
}
