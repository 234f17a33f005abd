// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext} from "../interfaces/IUpdatePolicy.sol";

/// @title Update policy mock: a "policy" that writes state
/// @notice Test-only. Has IUpdatePolicy's check selector but is not a view: it counts its calls.
/// The checker calls policies with STATICCALL, so this one always fails.
contract PolicyMockWriter {
    /// @notice How many checks have run.
    uint256 public calls;

    /// @notice Counts the call and allows the update.
    function check(bytes32, bytes32, uint64, DeviceContext calldata, bytes calldata) external returns (uint256) {
        ++calls;
        return 0;
    }
}
