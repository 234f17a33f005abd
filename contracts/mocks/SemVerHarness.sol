// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SemVer} from "../libraries/SemVer.sol";

/// @title SemVer test harness
/// @notice Test-only: exposes the SemVer library so tests can compare it with agent/core/version.ts.
contract SemVerHarness {
    /// @notice SemVer.isValid: whether `version` is a well-formed, non-zero encoding.
    function isValid(uint64 version) external pure returns (bool) {
        return SemVer.isValid(version);
    }

    /// @notice SemVer.inRange: whether `version` lies in [minVersion, maxVersion).
    function inRange(uint64 version, uint64 minVersion, uint64 maxVersion) external pure returns (bool) {
        return SemVer.inRange(version, minVersion, maxVersion);
    }
}
