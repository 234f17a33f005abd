// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Lifecycle of a release. `None` means "never published".
/// Active and Vulnerable releases are both "active" in the X.1368 sense (not revoked): they
/// still satisfy dependencies. Revoked is final.
enum ReleaseStatus {
    None,
    Active,
    Vulnerable,
    Revoked
}

/// @notice Why a release may not be installed on a device (0 means it may).
enum InstallCheck {
    Installable,
    UnknownRelease,
    ReleaseRevoked,
    ReleaseVulnerable,
    ProviderBarred,
    HardwareNotSupported,
    NotNewerThanInstalled,
    DependencyNotInstalled,
    DependencyVersionOutOfRange,
    SignerCompromised // its key was retired as compromised since a time at or before its publication
}

/// @notice Standing of a device identity on the ledger. `Revoked`: the record was enrolled but
/// has been withdrawn (a leaked key, a retired batch); the device may hold a newer record.
enum DeviceStanding {
    Unknown,
    Active,
    Suspended,
    Revoked
}

/// @notice A software dependency: `component` at a version in [minVersion, maxVersion).
struct Dependency {
    bytes32 component;
    uint64 minVersion;
    uint64 maxVersion;
}

/// @notice The author-signed part of a Table II-1 record. The release time is the block's and the
/// provider name is the registered one; both are added by the registry.
/// @dev `hardware` is strictly ascending; `dependencies` strictly ascending by component. Field
/// order follows Table II-1 and the EIP-712 type, not slot packing: it is never stored whole.
// solhint-disable-next-line gas-struct-packing
struct Release {
    uint32 provider;
    bytes32 component;
    uint64 version;
    bytes32 fileHash;
    string fileLink;
    string fileName;
    uint64 fileSize;
    bytes32 merkleRoot;
    uint16[] hardware;
    Dependency[] dependencies;
}

/// @notice What the registry keeps in storage for a release (the rest is in the
/// {ReleasePublished} event, committed to by the release id).
struct ReleaseState {
    bytes32 component;
    uint32 provider;
    uint64 version;
    uint40 publishedAt;
    ReleaseStatus status;
    uint16[] hardware;
}

/// @notice A component version installed on a device.
struct InstalledComponent {
    bytes32 component;
    uint64 version;
}

/// @notice A device's identity as enrolled on the ledger.
/// @dev `publicKey` is a 33-byte compressed secp256k1 key; `network` and `region` are short labels
/// (bytes32, e.g. ethers.encodeBytes32String("eu-west")); `region` is a geographic region or a
/// logical group.
struct DeviceRecord {
    bytes32 id;
    bytes publicKey;
    uint16 hardwareClass;
    bytes32 network;
    bytes32 region;
}
