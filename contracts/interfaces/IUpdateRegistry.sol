// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICatalog} from "./ICatalog.sol";
import {IReleaseRegistry} from "./IReleaseRegistry.sol";

/// @title The X.1368 Appendix II update registry: catalog and releases. Device and tracker-module
/// identities live in the FleetRegistry beside it, which uses these roles.
/// @notice Roles: the default admin (one account, transferred in two steps with a delay) governs
/// the administrator role; administrators run the registry and grant the auditor and tracker
/// roles; authors publish for their provider; auditors revoke and flag releases and bar
/// providers; trackers register tracker-module keys. The role ids are keccak256 of
/// "ADMINISTRATOR_ROLE", "AUTHOR_ROLE", "AUDITOR_ROLE" and "TRACKER_ROLE".
interface IUpdateRegistry is ICatalog, IReleaseRegistry {
    /// @notice The caller has neither `roleA` nor `roleB`.
    error UpdateRegistryUnauthorized(address account, bytes32 roleA, bytes32 roleB);

}
