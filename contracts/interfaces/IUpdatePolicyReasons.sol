// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The names of an update policy's reason codes (issue 18).
/// @notice Tools (`policy check`, `device install`, the tracker) print a refusal's name beside its
/// code. Detected with ERC-165.
interface IUpdatePolicyReasons {
    /// @notice The name of reason code `reason` as `check` answers it (upper snake case, e.g.
    /// "OUTSIDE_WINDOW"); "ALLOWED" for 0; empty for a code the policy does not define.
    function reasonName(uint256 reason) external view returns (string memory);
}
