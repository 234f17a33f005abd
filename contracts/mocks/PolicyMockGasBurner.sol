// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";

/// @title Update policy mock: a policy that uses a configured amount of gas
/// @notice Test-only. Spins until it has used BURN gas, then allows the update; with BURN above
/// what it is given it runs out of gas.
contract PolicyMockGasBurner is IUpdatePolicy {
    /// @notice Gas each check uses before it answers.
    uint256 public immutable BURN;

    constructor(uint256 burn) {
        BURN = burn;
    }

    /// @inheritdoc IUpdatePolicy
    function check(bytes32, bytes32, uint64, DeviceContext calldata, bytes calldata) external view returns (uint256) {
        uint256 start = gasleft();
        uint256 spins = 0;
        while (start - gasleft() < BURN) ++spins;
        return 0;
    }
}
