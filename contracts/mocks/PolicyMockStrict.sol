// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {UpdatePolicyBase} from "../policies/UpdatePolicyBase.sol";

/// @title Policy mock: built on the kit, reverts for a device with no id
/// @notice Test-only. A correct policy that refuses the all-zero inputs the tools once probed
/// policies with: the tools must recognise it by ERC-165 instead (issue 18).
contract PolicyMockStrict is UpdatePolicyBase {
    /// @notice The release has not soaked long enough (its publication is too recent).
    uint256 public constant SOAKING = 1;

    /// @notice Asked about no device at all.
    error PolicyMockStrictNoDevice();

    uint256 private immutable _SOAK_SECONDS;

    /// @notice A policy of `registry_` that lets a release be installed `soakSeconds` after its publication.
    /// @param registry_ The UpdateRegistry.
    /// @param soakSeconds How long after its publication a release may be installed.
    constructor(address registry_, uint256 soakSeconds) UpdatePolicyBase(registry_) {
        _SOAK_SECONDS = soakSeconds;
    }

    /// @inheritdoc IUpdatePolicy
    function check(bytes32 releaseId, bytes32, uint64, DeviceContext calldata device, bytes calldata)
        external
        view
        returns (uint256)
    {
        if (device.deviceId == bytes32(0)) revert PolicyMockStrictNoDevice();
        (bool known, uint40 publishedAt) = _publishedAt(releaseId);
        // solhint-disable-next-line not-rely-on-time
        return known && block.timestamp >= publishedAt + _SOAK_SECONDS ? ALLOWED : SOAKING;
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view override returns (string memory) {
        if (reason == SOAKING) return "SOAKING";
        return super.reasonName(reason);
    }
}
