// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IUpdateRegistry} from "./interfaces/IUpdateRegistry.sol";
import {RegistryAccess} from "./registry/RegistryAccess.sol";
import {Releases} from "./registry/Releases.sol";

/// @title OTA Ledger update registry (ITU-T X.1368 Appendix II).
/// @notice Records each firmware/software release with every Table II-1 block-data field, checks
/// version order, hardware and dependencies on publish, tracks release status (active,
/// vulnerable, revoked), and holds the providers, hardware classes and components. Devices and
/// tracker modules are in the FleetRegistry, which takes its roles from here.
contract UpdateRegistry is IUpdateRegistry, Releases {
    /// @notice EIP-712 domain name of release signatures.
    string public constant EIP712_NAME = "OTA Ledger UpdateRegistry";
    /// @notice EIP-712 domain version of release signatures.
    string public constant EIP712_VERSION = "1";

    /// @notice Deploys the registry with `initialAdmin` as default admin and administrator.
    /// @param adminTransferDelay Seconds a default-admin transfer must wait before it is accepted.
    /// @param initialAdmin The default admin, also made an administrator.
    constructor(uint48 adminTransferDelay, address initialAdmin)
        RegistryAccess(adminTransferDelay, initialAdmin)
        EIP712(EIP712_NAME, EIP712_VERSION)
    {}

}
