// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IUpdateRegistry} from "./interfaces/IUpdateRegistry.sol";
import {Bundle, IReleaseBundles} from "./interfaces/IReleaseBundles.sol";
import {Dependency, InstallCheck, InstalledComponent, Release, ReleaseStatus} from "./interfaces/UpdateRegistryTypes.sol";
import {SemVer} from "./libraries/SemVer.sol";

/// @title Release bundles beside the UpdateRegistry (issue 19; X.1368 APP-II-2, REQ-10c-ii).
/// @notice Releases of several components that a device installs together or not at all. Beside
/// the registry (whose releases, authors and installable check it reads), so that the registry's
/// code and storage stay as they are (docs/adr/0019-release-bundles.md).
contract ReleaseBundles is IReleaseBundles {
    /// @notice Fewest members of a bundle.
    uint256 public constant MIN_MEMBERS = 2;
    /// @notice Most members of a bundle.
    uint256 public constant MAX_MEMBERS = 8;
    /// @notice Longest bundle name in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;

    /// @dev One slot; the members are in _members.
    struct StoredBundle {
        uint32 provider;
        uint64 version;
        uint40 createdAt;
    }

    IUpdateRegistry private immutable _REGISTRY;
    mapping(bytes32 bundleId => StoredBundle) private _bundles;
    mapping(bytes32 bundleId => bytes32[] releaseIds) private _members;
    mapping(bytes32 nameKey => uint64 version) private _latest; // nameKey: keccak256(provider, name)

    constructor(IUpdateRegistry registry) {
        _REGISTRY = registry;
    }

    /// @notice The registry whose releases bundles name.
    function updateRegistry() external view returns (address) {
        return address(_REGISTRY);
    }

    // ---------------------------------------------------------------- actions

    /// @inheritdoc IReleaseBundles
    function createBundle(string calldata name, uint64 version, Release[] calldata members) external returns (bytes32 id) {
        uint256 count = members.length;
        if (count < MIN_MEMBERS || count > MAX_MEMBERS) revert ReleaseBundlesMemberCount(count, MIN_MEMBERS, MAX_MEMBERS);
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0) revert ReleaseBundlesEmptyName();
        if (nameLength > MAX_NAME_LENGTH) revert ReleaseBundlesNameTooLong(nameLength, MAX_NAME_LENGTH);
        if (!SemVer.isValid(version)) revert ReleaseBundlesInvalidVersion(version);

        (uint32 providerId, bytes32[] memory releaseIds, bytes32[] memory components) = _checkMembers(members);
        uint16[] memory hardware = _commonHardware(members);
        _checkDependenciesWithin(members);
        id = _record(providerId, name, version, releaseIds);
        emit BundleCreated(
            id, providerId, keccak256(bytes(name)), name, version, uint40(block.timestamp), releaseIds, components, hardware, msg.sender
        );
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReleaseBundles
    function bundleId(uint32 providerId, string calldata name, uint64 version) external view returns (bytes32) {
        return _bundleId(providerId, name, version);
    }

    /// @inheritdoc IReleaseBundles
    function bundle(bytes32 id) external view returns (Bundle memory b) {
        StoredBundle memory s = _requireBundle(id);
        return Bundle({provider: s.provider, version: s.version, createdAt: s.createdAt, releaseIds: _members[id]});
    }

    /// @inheritdoc IReleaseBundles
    function latestBundleVersion(uint32 providerId, string calldata name) external view returns (uint64) {
        return _latest[keccak256(abi.encode(providerId, name))];
    }

    /// @inheritdoc IReleaseBundles
    function checkBundle(bytes32 id, Release[] calldata members, uint16 hardwareClass, InstalledComponent[] calldata installed)
        external
        view
        returns (InstallCheck verdict, uint256 member)
    {
        uint256 count = _requireMembers(id, members);
        uint256 vulnerable = type(uint256).max; // the first member that is only vulnerable
        bool pending = false;
        for (uint256 i = 0; i < count; ++i) {
            (bool inPlace, InstallCheck c) = _checkMember(members, i, hardwareClass, installed);
            if (inPlace) continue;
            pending = true;
            if (c == InstallCheck.ReleaseVulnerable && vulnerable == type(uint256).max) vulnerable = i;
            else if (c != InstallCheck.Installable && c != InstallCheck.ReleaseVulnerable) return (c, i);
        }
        if (!pending) return (InstallCheck.NotNewerThanInstalled, 0);
        if (vulnerable != type(uint256).max) return (InstallCheck.ReleaseVulnerable, vulnerable);
        return (InstallCheck.Installable, 0);
    }

    // ---------------------------------------------------------------- internal

    function _bundleId(uint32 providerId, string calldata name, uint64 version) private view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), providerId, keccak256(bytes(name)), version));
    }

    function _requireBundle(bytes32 id) private view returns (StoredBundle memory s) {
        s = _bundles[id];
        if (s.createdAt == 0) revert ReleaseBundlesUnknownBundle(id);
    }

    /// @dev The bundle exists and `members` are its records in its order; returns their count.
    function _requireMembers(bytes32 id, Release[] calldata members) private view returns (uint256 count) {
        _requireBundle(id);
        bytes32[] storage ids = _members[id];
        count = ids.length;
        if (members.length != count) revert ReleaseBundlesMembersMismatch(id, members.length < count ? members.length : count);
        for (uint256 i = 0; i < count; ++i) {
            if (_REGISTRY.releaseId(members[i]) != ids[i]) revert ReleaseBundlesMembersMismatch(id, i);
        }
    }

    /// @dev Member `i` is in place (installed at its version), or the registry's verdict on it with
    /// the other members at their bundle versions.
    function _checkMember(Release[] calldata members, uint256 i, uint16 hardwareClass, InstalledComponent[] calldata installed)
        private
        view
        returns (bool inPlace, InstallCheck verdict)
    {
        (bool present, uint64 current) = _installedVersion(installed, members[i].component);
        if (present && current == members[i].version) return (true, InstallCheck.Installable);
        InstalledComponent[] memory others = _withOtherMembers(installed, members, i);
        return (false, _REGISTRY.checkInstallable(members[i], hardwareClass, others));
    }

    /// @dev Each record is a published, unrevoked release of one provider (the first member's),
    /// ascending by component; the caller is an author of that provider, which is not barred. A
    /// record that hashes to a known id is the author-signed one, so its fields are the ledger's.
    function _checkMembers(Release[] calldata members)
        private
        view
        returns (uint32 providerId, bytes32[] memory releaseIds, bytes32[] memory components)
    {
        uint256 count = members.length;
        providerId = members[0].provider;
        releaseIds = new bytes32[](count);
        components = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            Release calldata r = members[i];
            if (i > 0 && r.component <= members[i - 1].component) revert ReleaseBundlesMembersNotAscending(i);
            if (r.provider != providerId) revert ReleaseBundlesMixedProviders(i, providerId, r.provider);
            bytes32 rid = _REGISTRY.releaseId(r);
            ReleaseStatus status = _REGISTRY.releaseStatus(rid);
            if (status == ReleaseStatus.None) revert ReleaseBundlesUnknownRelease(i, rid);
            if (status == ReleaseStatus.Revoked) revert ReleaseBundlesMemberRevoked(i, rid);
            releaseIds[i] = rid;
            components[i] = r.component;
        }
        if (_REGISTRY.authorProvider(msg.sender) != providerId) revert ReleaseBundlesCreatorNotAuthor(msg.sender, providerId);
        (, bool barred) = _REGISTRY.provider(providerId);
        if (barred) revert ReleaseBundlesProviderBarred(providerId);
    }

    /// @dev Stores the bundle under its id; its version must be above the name's latest (so the id is new).
    function _record(uint32 providerId, string calldata name, uint64 version, bytes32[] memory releaseIds)
        private
        returns (bytes32 id)
    {
        bytes32 nameKey = keccak256(abi.encode(providerId, name));
        uint64 latest = _latest[nameKey];
        if (version <= latest) revert ReleaseBundlesVersionNotIncreasing(providerId, name, latest, version);
        id = _bundleId(providerId, name, version);
        _latest[nameKey] = version;
        _bundles[id] = StoredBundle({provider: providerId, version: version, createdAt: uint40(block.timestamp)});
        _members[id] = releaseIds;
    }

    /// @dev The hardware classes every member lists (each list is strictly ascending); not empty.
    function _commonHardware(Release[] calldata members) private pure returns (uint16[] memory common) {
        common = members[0].hardware;
        for (uint256 m = 1; m < members.length; ++m) common = _intersect(common, members[m].hardware);
        if (common.length == 0) revert ReleaseBundlesNoCommonHardware();
    }

    /// @dev The ids in both ascending lists, ascending.
    function _intersect(uint16[] memory a, uint16[] calldata b) private pure returns (uint16[] memory out) {
        bool[] memory kept = new bool[](a.length);
        uint256 n = 0;
        uint256 j = 0;
        for (uint256 i = 0; i < a.length; ++i) {
            while (j < b.length && b[j] < a[i]) ++j;
            if (j < b.length && b[j] == a[i]) {
                kept[i] = true;
                ++n;
            }
        }
        out = new uint16[](n);
        n = 0;
        for (uint256 i = 0; i < a.length; ++i) {
            if (kept[i]) {
                out[n] = a[i];
                ++n;
            }
        }
    }

    /// @dev APP-II-2 over the set: a dependency on another member's component must hold for that
    /// member's version. Members are ascending by component, so a dependency names a member at most once.
    function _checkDependenciesWithin(Release[] calldata members) private pure {
        for (uint256 i = 0; i < members.length; ++i) {
            Dependency[] calldata deps = members[i].dependencies;
            for (uint256 d = 0; d < deps.length; ++d) {
                for (uint256 j = 0; j < members.length; ++j) {
                    if (members[j].component != deps[d].component) continue;
                    if (!SemVer.inRange(members[j].version, deps[d].minVersion, deps[d].maxVersion)) {
                        revert ReleaseBundlesDependencyNotSatisfied(i, d, deps[d].component, members[j].version);
                    }
                }
            }
        }
    }

    /// @dev `installed` with every member but `self` at its bundle version (replacing or adding its component).
    function _withOtherMembers(InstalledComponent[] calldata installed, Release[] calldata members, uint256 self)
        private
        pure
        returns (InstalledComponent[] memory out)
    {
        bool[] memory replaced = new bool[](installed.length);
        uint256 n = members.length - 1;
        for (uint256 k = 0; k < installed.length; ++k) {
            for (uint256 j = 0; j < members.length; ++j) {
                if (j != self && members[j].component == installed[k].component) replaced[k] = true;
            }
            if (!replaced[k]) ++n;
        }
        out = new InstalledComponent[](n);
        n = 0;
        for (uint256 k = 0; k < installed.length; ++k) {
            if (!replaced[k]) {
                out[n] = installed[k];
                ++n;
            }
        }
        for (uint256 j = 0; j < members.length; ++j) {
            if (j != self) {
                out[n] = InstalledComponent({component: members[j].component, version: members[j].version});
                ++n;
            }
        }
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
