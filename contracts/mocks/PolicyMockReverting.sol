// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";

/// @title Update policy mock: a policy that reverts
/// @notice Test-only. Reverts with a custom error when the evidence is empty, and with no data
/// otherwise.
contract PolicyMockReverting is IUpdatePolicy {
    /// @notice The policy's own failure.
    error PolicyMockBroken(bytes32 releaseId);

    /// @inheritdoc IUpdatePolicy
    function check(bytes32 releaseId, bytes32, uint64, DeviceContext calldata, bytes calldata evidence)
        external
        pure
        returns (uint256)
    {
        if (evidence.length == 0) revert PolicyMockBroken(releaseId);
        // solhint-disable-next-line no-inline-assembly
        assembly {
            revert(0, 0)
        }
    }
}
