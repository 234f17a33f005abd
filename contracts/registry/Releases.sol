// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IReleaseRegistry} from "../interfaces/IReleaseRegistry.sol";
import {
    Release,
    ReleaseState,
    ReleaseStatus,
    InstallCheck,
    InstalledComponent,
    Dependency
} from "../interfaces/UpdateRegistryTypes.sol";
import {SemVer} from "../libraries/SemVer.sol";
import {ReleaseHashing} from "../libraries/ReleaseHashing.sol";
import {Catalog} from "./Catalog.sol";

/// @title Publishing releases (Table II-1), their status, and the views agents and policies use.
/// @notice Checks version order, hardware and dependencies on publish (REQ-10d-i, APP-II-2).
/// @dev Storage per release is one packed slot plus one slot in the component's release list
/// (docs/adr/0001-release-storage-and-ids.md); every other field is in the ReleasePublished event and
/// committed to by the release id, the EIP-712 digest of the signed record.
abstract contract Releases is Catalog, IReleaseRegistry, EIP712 {
    /// @notice Most hardware classes one release may list.
    uint256 public constant MAX_HARDWARE = 32;
    /// @notice Most dependencies one release may list.
    uint256 public constant MAX_DEPENDENCIES = 16;
    /// @notice Longest file link (IPFS CID) in bytes.
    uint256 public constant MAX_FILE_LINK_LENGTH = 128;
    /// @notice Longest file name in bytes.
    uint256 public constant MAX_FILE_NAME_LENGTH = 255;

    /// @dev How many hardware class ids fit in the release slot; more spill into _extraHardware.
    uint256 private constant INLINE_HARDWARE = 6;

    /// @dev One slot (248 bits).
    // solhint-disable-next-line gas-struct-packing
    struct StoredRelease {
        uint64 version;
        uint40 publishedAt;
        ReleaseStatus status;
        uint32 componentIndex;
        uint8 hardwareCount;
        uint96 inlineHardware; // up to 6 class ids, 16 bits each, the first in the low bits
    }

    mapping(bytes32 releaseId => StoredRelease) private _releases;
    mapping(bytes32 releaseId => uint16[]) private _extraHardware;
    mapping(bytes32 componentId => mapping(uint256 index => bytes32 releaseId)) private _componentReleases;

    // ---------------------------------------------------------------- publishing

    /// @inheritdoc IReleaseRegistry
    function publishRelease(
        Release calldata release,
        address signer,
        bytes calldata signature,
        bytes32[] calldata witnesses
    ) external returns (bytes32 id) {
        StoredComponent memory c = _requireComponent(release.component);
        if (authorProvider(_msgSender()) != c.provider) {
            revert UpdateRegistryPublisherNotAuthor(_msgSender(), c.provider);
        }
        if (release.provider != c.provider) {
            revert UpdateRegistryProviderMismatch(release.component, c.provider, release.provider);
        }
        if (_isProviderBarred(c.provider)) revert UpdateRegistryProviderBarred(c.provider);
        if (!SemVer.isValid(release.version)) revert UpdateRegistryInvalidVersion(release.version);
        if (release.version <= c.latestVersion) {
            revert UpdateRegistryVersionNotIncreasing(release.component, c.latestVersion, release.version);
        }
        _checkFileFields(release);
        uint96 inlineHardware = _checkHardware(release.hardware);
        _checkDependencies(release, witnesses);

        id = _hashTypedDataV4(ReleaseHashing.structHash(release));
        _checkSignature(c.provider, signer, id, signature);

        // The id commits to (component, version) and versions strictly increase, so it is new.
        uint256 hardwareCount = release.hardware.length;
        _releases[id] = StoredRelease({
            version: release.version,
            publishedAt: uint40(block.timestamp),
            status: ReleaseStatus.Active,
            componentIndex: c.index,
            hardwareCount: uint8(hardwareCount),
            inlineHardware: inlineHardware
        });
        if (hardwareCount > INLINE_HARDWARE) _extraHardware[id] = release.hardware[INLINE_HARDWARE:];
        _componentReleases[release.component][c.releaseCount] = id;
        _components[release.component] = StoredComponent({
            provider: c.provider,
            index: c.index,
            latestVersion: release.version,
            releaseCount: c.releaseCount + 1
        });

        _emitPublished(id, c.provider, release, signer, signature);
    }

    /// @dev Separate from publishRelease to keep the EVM stack shallow.
    function _emitPublished(
        bytes32 id,
        uint32 providerId,
        Release calldata release,
        address signer,
        bytes calldata signature
    ) private {
        emit ReleasePublished(
            id,
            release.component,
            providerId,
            release.version,
            uint40(block.timestamp),
            _providerName(providerId),
            release,
            signer,
            signature
        );
    }

    function _checkFileFields(Release calldata release) private pure {
        if (release.fileHash == bytes32(0)) revert UpdateRegistryZeroFileHash();
        if (release.merkleRoot == bytes32(0)) revert UpdateRegistryZeroMerkleRoot();
        if (release.fileSize == 0) revert UpdateRegistryZeroFileSize();
        uint256 linkLength = bytes(release.fileLink).length;
        if (linkLength == 0) revert UpdateRegistryEmptyFileLink();
        if (linkLength > MAX_FILE_LINK_LENGTH) revert UpdateRegistryFileLinkTooLong(linkLength, MAX_FILE_LINK_LENGTH);
        uint256 nameLength = bytes(release.fileName).length;
        if (nameLength == 0) revert UpdateRegistryEmptyFileName();
        if (nameLength > MAX_FILE_NAME_LENGTH) revert UpdateRegistryFileNameTooLong(nameLength, MAX_FILE_NAME_LENGTH);
    }

    /// @dev Checks the hardware list and returns its first INLINE_HARDWARE ids packed.
    function _checkHardware(uint16[] calldata hardware) private view returns (uint96 packed) {
        uint256 count = hardware.length;
        if (count == 0) revert UpdateRegistryNoHardware();
        if (count > MAX_HARDWARE) revert UpdateRegistryTooManyHardwareClasses(count, MAX_HARDWARE);
        for (uint256 i = 0; i < count; ++i) {
            uint16 hw = hardware[i];
            if (i > 0 && hw <= hardware[i - 1]) revert UpdateRegistryHardwareNotAscending(i);
            if (!_isHardwareClass(hw)) revert UpdateRegistryUnknownHardwareClass(hw);
            if (i < INLINE_HARDWARE) packed |= uint96(hw) << uint96(16 * i);
        }
    }

    /// @dev APP-II-2: each dependency must be met by an unrevoked release, shown by its witness.
    function _checkDependencies(Release calldata release, bytes32[] calldata witnesses) private view {
        Dependency[] calldata deps = release.dependencies;
        uint256 count = deps.length;
        if (count > MAX_DEPENDENCIES) revert UpdateRegistryTooManyDependencies(count, MAX_DEPENDENCIES);
        if (witnesses.length != count) revert UpdateRegistryWitnessCountMismatch(count, witnesses.length);
        for (uint256 i = 0; i < count; ++i) {
            Dependency calldata dep = deps[i];
            if (i > 0 && dep.component <= deps[i - 1].component) revert UpdateRegistryDependencyNotAscending(i);
            if (dep.component == release.component) revert UpdateRegistrySelfDependency(i);
            if (dep.minVersion >= dep.maxVersion) {
                revert UpdateRegistryInvalidDependencyRange(i, dep.minVersion, dep.maxVersion);
            }
            StoredComponent memory depComponent = _requireComponent(dep.component);
            if (_isProviderBarred(depComponent.provider)) {
                revert UpdateRegistryDependencyProviderBarred(i, dep.component, depComponent.provider);
            }
            StoredRelease memory witness = _releases[witnesses[i]];
            if (
                witness.componentIndex != depComponent.index || !_isUnrevoked(witness.status)
                    || !SemVer.inRange(witness.version, dep.minVersion, dep.maxVersion)
            ) {
                revert UpdateRegistryDependencyNotSatisfied(
                    i, dep.component, dep.minVersion, dep.maxVersion, witnesses[i]
                );
            }
        }
    }

    function _checkSignature(uint32 providerId, address signer, bytes32 digest, bytes calldata signature)
        private
        view
    {
        if (!isProviderSigner(providerId, signer)) revert UpdateRegistrySignerNotAuthorized(providerId, signer);
        if (!SignatureChecker.isValidSignatureNow(signer, digest, signature)) {
            revert UpdateRegistryInvalidSignature(signer);
        }
    }

    // ---------------------------------------------------------------- status

    /// @inheritdoc IReleaseRegistry
    function revokeRelease(bytes32 id, string calldata reason)
        external
        onlyEitherRole(ADMINISTRATOR_ROLE, AUDITOR_ROLE)
    {
        if (bytes(reason).length == 0) revert UpdateRegistryEmptyReason();
        StoredRelease storage s = _releases[id];
        if (s.status == ReleaseStatus.None) revert UpdateRegistryUnknownRelease(id);
        if (s.status == ReleaseStatus.Revoked) revert UpdateRegistryReleaseRevoked(id);
        s.status = ReleaseStatus.Revoked;
        emit ReleaseRevoked(id, _componentIds[s.componentIndex], _msgSender(), reason);
    }

    /// @inheritdoc IReleaseRegistry
    function flagVulnerable(bytes32 id, string calldata advisory)
        external
        onlyEitherRole(ADMINISTRATOR_ROLE, AUDITOR_ROLE)
    {
        if (bytes(advisory).length == 0) revert UpdateRegistryEmptyReason();
        StoredRelease storage s = _releases[id];
        if (s.status == ReleaseStatus.None) revert UpdateRegistryUnknownRelease(id);
        if (s.status == ReleaseStatus.Revoked) revert UpdateRegistryReleaseRevoked(id);
        if (s.status == ReleaseStatus.Vulnerable) revert UpdateRegistryReleaseAlreadyVulnerable(id);
        s.status = ReleaseStatus.Vulnerable;
        emit ReleaseFlaggedVulnerable(id, _componentIds[s.componentIndex], _msgSender(), advisory);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReleaseRegistry
    function releaseId(Release calldata release) public view returns (bytes32) {
        return _hashTypedDataV4(ReleaseHashing.structHash(release));
    }

    /// @inheritdoc IReleaseRegistry
    function releaseState(bytes32 id) external view returns (ReleaseState memory state) {
        StoredRelease memory s = _releases[id];
        if (s.status == ReleaseStatus.None) revert UpdateRegistryUnknownRelease(id);
        bytes32 componentId = _componentIds[s.componentIndex];
        state.component = componentId;
        state.provider = _components[componentId].provider;
        state.version = s.version;
        state.publishedAt = s.publishedAt;
        state.status = s.status;
        state.hardware = _hardwareOf(id, s);
    }

    /// @inheritdoc IReleaseRegistry
    function releaseStatus(bytes32 id) external view returns (ReleaseStatus) {
        return _releases[id].status;
    }

    /// @inheritdoc IReleaseRegistry
    function releaseAt(bytes32 componentId, uint256 index) external view returns (bytes32) {
        uint256 count = _requireComponent(componentId).releaseCount;
        if (index >= count) revert UpdateRegistryReleaseIndexOutOfRange(componentId, index, count);
        return _componentReleases[componentId][index];
    }

    /// @inheritdoc IReleaseRegistry
    function latestRelease(bytes32 componentId, bool includeVulnerable) external view returns (bytes32) {
        return _latest(componentId, 0, includeVulnerable);
    }

    /// @inheritdoc IReleaseRegistry
    function latestReleaseForHardware(bytes32 componentId, uint16 hardwareClassId, bool includeVulnerable)
        external
        view
        returns (bytes32)
    {
        if (!_isHardwareClass(hardwareClassId)) revert UpdateRegistryUnknownHardwareClass(hardwareClassId);
        return _latest(componentId, hardwareClassId, includeVulnerable);
    }

    /// @inheritdoc IReleaseRegistry
    function findSatisfyingRelease(bytes32 componentId, uint64 minVersion, uint64 maxVersion)
        external
        view
        returns (bytes32)
    {
        uint256 count = _requireComponent(componentId).releaseCount;
        // Versions increase with the index: walk down from the newest, stop below the range.
        for (uint256 i = count; i > 0; --i) {
            bytes32 id = _componentReleases[componentId][i - 1];
            StoredRelease memory s = _releases[id];
            if (s.version < minVersion) break;
            if (s.version < maxVersion && _isUnrevoked(s.status)) return id;
        }
        return bytes32(0);
    }

    /// @inheritdoc IReleaseRegistry
    function checkInstallable(
        Release calldata release,
        uint16 hardwareClassId,
        InstalledComponent[] calldata installed
    ) external view returns (InstallCheck) {
        StoredRelease memory s = _releases[releaseId(release)];
        if (s.status == ReleaseStatus.None) return InstallCheck.UnknownRelease;
        if (s.status == ReleaseStatus.Revoked) return InstallCheck.ReleaseRevoked;
        if (_isProviderBarred(release.provider)) return InstallCheck.ProviderBarred;
        if (!_contains(release.hardware, hardwareClassId)) return InstallCheck.HardwareNotSupported;
        (bool present, uint64 current) = _installedVersion(installed, release.component);
        if (present && current >= release.version) return InstallCheck.NotNewerThanInstalled;
        for (uint256 i = 0; i < release.dependencies.length; ++i) {
            Dependency calldata dep = release.dependencies[i];
            (present, current) = _installedVersion(installed, dep.component);
            if (!present) return InstallCheck.DependencyNotInstalled;
            if (!SemVer.inRange(current, dep.minVersion, dep.maxVersion)) {
                return InstallCheck.DependencyVersionOutOfRange;
            }
        }
        // Last, so that this code means "installable but for being flagged vulnerable".
        if (s.status == ReleaseStatus.Vulnerable) return InstallCheck.ReleaseVulnerable;
        return InstallCheck.Installable;
    }

    // ---------------------------------------------------------------- internal

    function _latest(bytes32 componentId, uint16 hardwareClassId, bool includeVulnerable)
        private
        view
        returns (bytes32)
    {
        uint256 count = _requireComponent(componentId).releaseCount;
        for (uint256 i = count; i > 0; --i) {
            bytes32 id = _componentReleases[componentId][i - 1];
            StoredRelease memory s = _releases[id];
            bool eligible = s.status == ReleaseStatus.Active || (includeVulnerable && s.status == ReleaseStatus.Vulnerable);
            if (eligible && (hardwareClassId == 0 || _contains(_hardwareOf(id, s), hardwareClassId))) return id;
        }
        return bytes32(0);
    }

    function _hardwareOf(bytes32 id, StoredRelease memory s) private view returns (uint16[] memory hardware) {
        hardware = new uint16[](s.hardwareCount);
        uint256 inlineCount = s.hardwareCount < INLINE_HARDWARE ? s.hardwareCount : INLINE_HARDWARE;
        for (uint256 i = 0; i < inlineCount; ++i) {
            hardware[i] = uint16(s.inlineHardware >> (16 * i));
        }
        if (s.hardwareCount > INLINE_HARDWARE) {
            uint16[] storage extra = _extraHardware[id];
            for (uint256 i = INLINE_HARDWARE; i < s.hardwareCount; ++i) {
                hardware[i] = extra[i - INLINE_HARDWARE];
            }
        }
    }

    function _isUnrevoked(ReleaseStatus status) private pure returns (bool) {
        return status == ReleaseStatus.Active || status == ReleaseStatus.Vulnerable;
    }

    function _contains(uint16[] memory list, uint16 value) private pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == value) return true;
        }
        return false;
    }

    function _installedVersion(InstalledComponent[] calldata installed, bytes32 componentId)
        private
        pure
        returns (bool present, uint64 version)
    {
        for (uint256 i = 0; i < installed.length; ++i) {
            if (installed[i].component == componentId) return (true, installed[i].version);
        }
        return (false, 0);
    }
}
