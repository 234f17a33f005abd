// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Semantic versions encoded as uint64 so that integer order is version order.
/// @notice Layout, most significant first: major (16 bits), minor (16), patch (16), pre-release
/// (16). The pre-release field is 0xFFFF for a final release and `channel << 14 | n` for a
/// pre-release, with channel 0 = alpha, 1 = beta, 2 = rc and n < 16384, so that
/// 1.2.3-alpha.1 < 1.2.3-beta.0 < 1.2.3-rc.2 < 1.2.3. Values 0xC000..0xFFFE are malformed.
/// The TypeScript side (agent/core/version.ts) implements the same encoding.
library SemVer {
    uint64 internal constant FINAL = 0xFFFF;
    uint64 internal constant FIRST_MALFORMED_PRE_RELEASE = 0xC000;

    /// @notice Whether `version` is a well-formed, non-zero encoding.
    function isValid(uint64 version) internal pure returns (bool) {
        uint64 pre = version & 0xFFFF;
        return version != 0 && (pre == FINAL || pre < FIRST_MALFORMED_PRE_RELEASE);
    }

    /// @notice The major version (the top 16 bits).
    function major(uint64 version) internal pure returns (uint64) {
        return version >> 48;
    }

    /// @notice Whether `version` lies in [minVersion, maxVersion).
    function inRange(uint64 version, uint64 minVersion, uint64 maxVersion) internal pure returns (bool) {
        return version >= minVersion && version < maxVersion;
    }
}
