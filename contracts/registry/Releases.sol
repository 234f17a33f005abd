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
    /// @notice Most a release may raise its component's major version (docs/adr/0008).
    uint64 public constant MAX_MAJOR_STEP = 16;

    /// @dev How many hardware class ids fit in the release slot; more spill into _extraHardware.
    uint256 private constant INLINE_HARDWARE = 6;

    /// @dev One slot (256 bits).
    // solhint-disable-next-line gas-struct-packing
    struct StoredRelease {
        uint64 version;
        uint40 publishedAt;
        ReleaseStatus status;
        uint32 componentIndex;
        uint8 hardwareCount;
        uint96 inlineHardware; // up to 6 class ids, 16 bits each, the first in the low bits
        uint8 signer; // the ordinal of the key that signed it among its provider's (Catalog.SignerTerm)
    }

    mapping(bytes32 releaseId => StoredRelease) private _releases;
    mapping(bytes32 releaseId => uint16[]) private _extraHardware;
    mapping(bytes32 componentId => mapping(uint256 index => bytes32 releaseId)) private _componentReleases;

    /// @dev How views hop over releases that cannot answer them, written when a release leaves a
    /// class (unrevoked: revoke; active: flag or revoke) and never on publish. Each maximal block of
    /// consecutive releases out of a class is a tree (union by size, so at most log2(n) deep) whose
    /// root holds the block's lowest index: a view that meets a release out of the class goes to its
    /// root and on to the release right below the block, which is in the class (or there is none).
    struct Link {
        uint32 parent; // index + 1 of the parent; 0 for a root
        uint32 size; // a root's block size
        uint32 bottom; // a root's lowest index
    }

    /// @dev Blocks of revoked releases (for views that take vulnerable releases too).
    mapping(bytes32 componentId => mapping(uint256 index => Link)) private _unrevokedLinks;
    /// @dev Blocks of revoked or vulnerable releases (for views of active releases).
    mapping(bytes32 componentId => mapping(uint256 index => Link)) private _activeLinks;
    /// @dev The first release index of each run of consecutive releases that list the same hardware
    /// classes (run 0 starts at 0 and is not stored); StoredComponent.hardwareRuns counts the runs.
    /// Written only when a release's hardware list differs from the previous release's.
    mapping(bytes32 componentId => mapping(uint256 run => uint32 firstIndex)) private _runStarts;

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
        _checkVersion(release.component, c, release.version);
        _checkFileFields(release);
        uint96 inlineHardware = _checkHardware(release.hardware);
        _checkDependencies(release, witnesses);

        id = _hashTypedDataV4(ReleaseHashing.structHash(release));
        uint8 signerOrdinal = _checkSignature(c.provider, signer, id, signature);

        // The id commits to (component, version) and versions strictly increase, so it is new.
        uint256 hardwareCount = release.hardware.length;
        _releases[id] = StoredRelease({
            version: release.version,
            publishedAt: uint40(block.timestamp),
            status: ReleaseStatus.Active,
            componentIndex: c.index,
            hardwareCount: uint8(hardwareCount),
            inlineHardware: inlineHardware,
            signer: signerOrdinal
        });
        if (hardwareCount > INLINE_HARDWARE) _extraHardware[id] = release.hardware[INLINE_HARDWARE:];
        uint32 runs = _hardwareRuns(release.component, c, release.hardware, inlineHardware);
        _componentReleases[release.component][c.releaseCount] = id;
        _components[release.component] = StoredComponent({
            provider: c.provider,
            index: c.index,
            latestVersion: release.version,
            releaseCount: c.releaseCount + 1,
            hardwareRuns: runs
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

    /// @dev Well formed, above the latest (REQ-10d-i), and at most MAX_MAJOR_STEP majors above it
    /// unless it is the component's first release (docs/adr/0008).
    function _checkVersion(bytes32 componentId, StoredComponent memory c, uint64 version) private pure {
        if (!SemVer.isValid(version)) revert UpdateRegistryInvalidVersion(version);
        if (version <= c.latestVersion) revert UpdateRegistryVersionNotIncreasing(componentId, c.latestVersion, version);
        uint64 latestMajor = SemVer.major(c.latestVersion);
        if (c.releaseCount != 0 && SemVer.major(version) > latestMajor + MAX_MAJOR_STEP) {
            revert UpdateRegistryMajorVersionJump(componentId, latestMajor, SemVer.major(version), MAX_MAJOR_STEP);
        }
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

    /// @dev The component's run count once a release listing `hardware` is added: a new run starts
    /// (its first index stored) when the list differs from the previous release's.
    function _hardwareRuns(bytes32 componentId, StoredComponent memory c, uint16[] calldata hardware, uint96 inlineHardware)
        private
        returns (uint32 runs)
    {
        runs = c.hardwareRuns;
        if (runs != 0 && _sameHardware(componentId, c.releaseCount - 1, hardware, inlineHardware)) return runs;
        if (runs != 0) _runStarts[componentId][runs] = c.releaseCount;
        ++runs;
    }

    /// @dev Whether release `index` of `componentId` lists exactly `hardware` (packed: `inlineHardware`).
    function _sameHardware(bytes32 componentId, uint256 index, uint16[] calldata hardware, uint96 inlineHardware)
        private
        view
        returns (bool)
    {
        bytes32 previousId = _componentReleases[componentId][index];
        StoredRelease storage previous = _releases[previousId];
        if (previous.hardwareCount != hardware.length || previous.inlineHardware != inlineHardware) return false;
        if (hardware.length <= INLINE_HARDWARE) return true;
        uint16[] storage extra = _extraHardware[previousId];
        for (uint256 i = INLINE_HARDWARE; i < hardware.length; ++i) {
            if (extra[i - INLINE_HARDWARE] != hardware[i]) return false;
        }
        return true;
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
            StoredRelease storage witness = _releases[witnesses[i]];
            if (
                witness.componentIndex != depComponent.index || !_isUnrevoked(witness.status)
                    || !SemVer.inRange(witness.version, dep.minVersion, dep.maxVersion)
                    || _signerCompromised(depComponent.provider, witness.signer, witness.publishedAt)
            ) {
                revert UpdateRegistryDependencyNotSatisfied(
                    i, dep.component, dep.minVersion, dep.maxVersion, witnesses[i]
                );
            }
        }
    }

    /// @dev The signer may sign now and the signature is its; returns the key's ordinal, kept in the release slot.
    function _checkSignature(uint32 providerId, address signer, bytes32 digest, bytes calldata signature)
        private
        view
        returns (uint8)
    {
        SignerTerm storage t = _signerTerm(providerId, signer);
        if (!_maySign(t)) revert UpdateRegistrySignerNotAuthorized(providerId, signer);
        if (!SignatureChecker.isValidSignatureNow(signer, digest, signature)) {
            revert UpdateRegistryInvalidSignature(signer);
        }
        return t.ordinal;
    }

    /// @dev Whether a stored release's key was compromised at its publication. Free unless one of
    /// the provider's keys was ever retired as compromised (a flag in the slot the bar is read from).
    function _signerCompromised(uint32 providerId, uint8 ordinal, uint40 publishedAt) private view returns (bool) {
        if (!_hasCompromisedSigner(providerId)) return false;
        (, SignerTerm storage t) = _signerTermAt(providerId, ordinal);
        return !_signedInTerm(t, publishedAt);
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
        bytes32 componentId = _componentIds[s.componentIndex];
        uint256 index = _indexOf(componentId, s.version);
        uint256 count = _components[componentId].releaseCount;
        _leaveClass(componentId, index, count, false);
        if (s.status == ReleaseStatus.Active) _leaveClass(componentId, index, count, true);
        s.status = ReleaseStatus.Revoked;
        emit ReleaseRevoked(id, componentId, _msgSender(), reason);
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
        bytes32 componentId = _componentIds[s.componentIndex];
        uint256 index = _indexOf(componentId, s.version);
        _leaveClass(componentId, index, _components[componentId].releaseCount, true);
        s.status = ReleaseStatus.Vulnerable;
        emit ReleaseFlaggedVulnerable(id, componentId, _msgSender(), advisory);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReleaseRegistry
    function releaseId(Release calldata release) public view returns (bytes32) {
        return _hashTypedDataV4(ReleaseHashing.structHash(release));
    }

    /// @inheritdoc IReleaseRegistry
    function releaseState(bytes32 id) external view returns (ReleaseState memory state) {
        StoredRelease storage s = _releases[id];
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
    function releaseSigner(bytes32 id) external view returns (address signer, bool valid) {
        StoredRelease storage s = _releases[id];
        if (s.status == ReleaseStatus.None) return (address(0), false);
        SignerTerm storage t;
        (signer, t) = _signerTermAt(_components[_componentIds[s.componentIndex]].provider, s.signer);
        valid = _signedInTerm(t, s.publishedAt);
    }

    /// @inheritdoc IReleaseRegistry
    function releaseAt(bytes32 componentId, uint256 index) external view returns (bytes32) {
        uint256 count = _requireComponent(componentId).releaseCount;
        if (index >= count) revert UpdateRegistryReleaseIndexOutOfRange(componentId, index, count);
        return _componentReleases[componentId][index];
    }

    /// @inheritdoc IReleaseRegistry
    function latestRelease(bytes32 componentId, bool includeVulnerable) external view returns (bytes32) {
        uint256 count = _requireComponent(componentId).releaseCount;
        (bool found, uint256 index) = _newestIn(componentId, 0, count, !includeVulnerable);
        return found ? _componentReleases[componentId][index] : bytes32(0);
    }

    /// @inheritdoc IReleaseRegistry
    function latestReleaseForHardware(bytes32 componentId, uint16 hardwareClassId, bool includeVulnerable)
        external
        view
        returns (bytes32)
    {
        if (!_isHardwareClass(hardwareClassId)) revert UpdateRegistryUnknownHardwareClass(hardwareClassId);
        StoredComponent memory c = _requireComponent(componentId);
        // Newest run first; within a run every release lists the same hardware, so one look at its
        // first release says whether the run can answer.
        uint256 end = c.releaseCount;
        for (uint256 run = c.hardwareRuns; run > 0; --run) {
            uint256 start = run == 1 ? 0 : _runStarts[componentId][run - 1];
            bytes32 first = _componentReleases[componentId][start];
            if (_contains(_hardwareOf(first, _releases[first]), hardwareClassId)) {
                (bool found, uint256 index) = _newestIn(componentId, start, end, !includeVulnerable);
                if (found) return _componentReleases[componentId][index];
            }
            end = start;
        }
        return bytes32(0);
    }

    /// @inheritdoc IReleaseRegistry
    function findSatisfyingRelease(bytes32 componentId, uint64 minVersion, uint64 maxVersion)
        external
        view
        returns (bytes32)
    {
        uint256 count = _requireComponent(componentId).releaseCount;
        // Versions increase with the index: the releases below maxVersion are the first n.
        uint256 n = _countBelow(componentId, count, maxVersion);
        (bool found, uint256 index) = _newestIn(componentId, 0, n, false);
        if (!found) return bytes32(0);
        bytes32 id = _componentReleases[componentId][index];
        return _releases[id].version >= minVersion ? id : bytes32(0);
    }

    /// @inheritdoc IReleaseRegistry
    function checkInstallable(
        Release calldata release,
        uint16 hardwareClassId,
        InstalledComponent[] calldata installed
    ) external view returns (InstallCheck) {
        StoredRelease storage s = _releases[releaseId(release)];
        if (s.status == ReleaseStatus.None) return InstallCheck.UnknownRelease;
        if (s.status == ReleaseStatus.Revoked) return InstallCheck.ReleaseRevoked;
        if (_isProviderBarred(release.provider)) return InstallCheck.ProviderBarred;
        if (_signerCompromised(release.provider, s.signer, s.publishedAt)) return InstallCheck.SignerCompromised;
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

    /// @dev The newest release with index in [start, end) that is unrevoked (and, if `activeOnly`,
    /// active), hopping over the others by their skips.
    function _newestIn(bytes32 componentId, uint256 start, uint256 end, bool activeOnly)
        private
        view
        returns (bool found, uint256 index)
    {
        uint256 n = end;
        while (n > start) {
            index = n - 1;
            if (_inClass(_statusAt(componentId, index), activeOnly)) return (true, index);
            mapping(uint256 => Link) storage links = _links(componentId, activeOnly);
            // The block's lowest index: the release below it is in the class, or there is none.
            n = links[_root(links, index)].bottom;
        }
        return (false, 0);
    }

    /// @dev Release `index` leaves the class: it joins the blocks right below and above it (the
    /// releases beside it that are out of the class already), smaller tree under the larger.
    function _leaveClass(bytes32 componentId, uint256 index, uint256 count, bool activeOnly) private {
        mapping(uint256 => Link) storage links = _links(componentId, activeOnly);
        uint256 root = index;
        links[index] = Link({parent: 0, size: 1, bottom: uint32(index)});
        if (index > 0 && !_inClass(_statusAt(componentId, index - 1), activeOnly)) {
            root = _union(links, _root(links, index - 1), root);
        }
        if (index + 1 < count && !_inClass(_statusAt(componentId, index + 1), activeOnly)) {
            _union(links, root, _root(links, index + 1));
        }
    }

    /// @dev Joins the block with root `lower` and the block right above it with root `upper`.
    function _union(mapping(uint256 => Link) storage links, uint256 lower, uint256 upper) private returns (uint256) {
        Link memory low = links[lower];
        Link memory high = links[upper];
        uint32 size = low.size + high.size;
        if (low.size >= high.size) {
            links[upper].parent = uint32(lower + 1);
            links[lower].size = size;
            return lower;
        }
        links[lower].parent = uint32(upper + 1);
        links[upper] = Link({parent: 0, size: size, bottom: low.bottom});
        return upper;
    }

    function _root(mapping(uint256 => Link) storage links, uint256 index) private view returns (uint256) {
        uint32 parent = links[index].parent;
        while (parent != 0) {
            index = parent - 1;
            parent = links[index].parent;
        }
        return index;
    }

    function _links(bytes32 componentId, bool activeOnly) private view returns (mapping(uint256 => Link) storage) {
        return activeOnly ? _activeLinks[componentId] : _unrevokedLinks[componentId];
    }

    function _statusAt(bytes32 componentId, uint256 index) private view returns (ReleaseStatus) {
        return _releases[_componentReleases[componentId][index]].status;
    }

    /// @dev How many of the component's first `count` releases have a version below `version`
    /// (versions strictly increase with the index): a binary search.
    function _countBelow(bytes32 componentId, uint256 count, uint64 version) private view returns (uint256 lo) {
        uint256 hi = count;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (_releases[_componentReleases[componentId][mid]].version < version) lo = mid + 1;
            else hi = mid;
        }
    }

    /// @dev The index of the component's release with `version` (it exists: versions are unique).
    function _indexOf(bytes32 componentId, uint64 version) private view returns (uint256) {
        return _countBelow(componentId, _components[componentId].releaseCount, version);
    }

    function _inClass(ReleaseStatus status, bool activeOnly) private pure returns (bool) {
        return status == ReleaseStatus.Active || (!activeOnly && status == ReleaseStatus.Vulnerable);
    }

    function _hardwareOf(bytes32 id, StoredRelease storage s) private view returns (uint16[] memory hardware) {
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
