// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {UpdatePolicyBase} from "../policies/UpdatePolicyBase.sol";

/// @title Allowlist and soak: devices on an allowlist may take a release once it has been public
/// for a soak time (X.1368 App. II, APP-II-3). The second worked example of docs/writing-a-policy.md,
/// built on the policy kit: a policy that needs evidence from each device.
/// @notice The allowlist is the Merkle root of device ids an administrator sets ({setAllowlist});
/// the list itself stays off-chain. A device proves it is on the list with its evidence,
/// abi.encode(bytes32[] proof), which `ota-ledger policy allowlist` builds for each device and
/// `ota-ledger policy evidence` hands out (through the tracker, or into a device's state).
/// A release soaks for {SOAK_SECONDS} after its publication: while it soaks, no device may take it
/// (time for the author's and the administrators' own checks to find a bad release first).
/// @dev The check reads one storage slot and calls the registry once ({_publishedAt}); a proof has
/// at most {MAX_PROOF_LENGTH} siblings, so the check stays far below the checker's gas cap.
/// The evidence is the device's claim: it is trusted only because it proves a leaf under the root.
contract AllowlistSoakPolicy is UpdatePolicyBase {
    // ---------------------------------------------------------------- reason codes (stable)
    /// @notice The registry does not know the release.
    uint256 public constant UNKNOWN_RELEASE = 1;
    /// @notice No allowlist is set yet: every device is refused (fails closed).
    uint256 public constant NO_ALLOWLIST = 2;
    /// @notice The device brought no evidence (it needs its allowlist proof).
    uint256 public constant NO_EVIDENCE = 3;
    /// @notice The evidence is not abi.encode(bytes32[] proof) in canonical form.
    uint256 public constant MALFORMED_EVIDENCE = 4;
    /// @notice The proof does not show the device on the allowlist.
    uint256 public constant NOT_ON_ALLOWLIST = 5;
    /// @notice The release was published less than {SOAK_SECONDS} ago.
    uint256 public constant SOAKING = 6;

    /// @notice Most siblings a proof may have (a list of up to 2**32 devices).
    uint256 public constant MAX_PROOF_LENGTH = 32;
    /// @notice Longest soak time a policy may have: one year.
    uint256 public constant MAX_SOAK_SECONDS = 365 days;

    /// @notice How long a release soaks after its publication, in seconds.
    uint256 public immutable SOAK_SECONDS;

    /// @notice A soak time above {MAX_SOAK_SECONDS}.
    error AllowlistSoakPolicySoakTooLong(uint256 soakSeconds, uint256 max);
    /// @notice The zero root (it would refuse every device while looking set).
    error AllowlistSoakPolicyZeroRoot();

    /// @notice The allowlist changed from `previous` to `root`.
    event AllowlistSet(bytes32 previous, bytes32 root, address indexed by);

    bytes32 private _root;

    /// @notice A policy with no allowlist yet ({setAllowlist}) and a soak time of `soakSeconds`.
    /// @param registry_ The UpdateRegistry whose administrators set the list and whose releases soak.
    /// @param soakSeconds How long each release soaks after its publication (at most {MAX_SOAK_SECONDS}).
    constructor(address registry_, uint256 soakSeconds) UpdatePolicyBase(registry_) {
        if (soakSeconds > MAX_SOAK_SECONDS) revert AllowlistSoakPolicySoakTooLong(soakSeconds, MAX_SOAK_SECONDS);
        SOAK_SECONDS = soakSeconds;
    }

    /// @notice Sets the allowlist to the device tree with this `root` (`ota-ledger policy allowlist`
    /// prints it). Devices keep their proofs only if the new tree holds them.
    /// @dev Requirements: caller is a registry administrator; `root` is not zero. Emits {AllowlistSet}.
    function setAllowlist(bytes32 root) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        if (root == bytes32(0)) revert AllowlistSoakPolicyZeroRoot();
        emit AllowlistSet(_root, root, msg.sender);
        _root = root;
    }

    /// @notice The root of the allowlist (zero while none is set).
    function allowlistRoot() external view returns (bytes32) {
        return _root;
    }

    /// @inheritdoc IUpdatePolicy
    /// @dev Reasons, first that applies: {UNKNOWN_RELEASE}, {NO_ALLOWLIST}, {NO_EVIDENCE},
    /// {MALFORMED_EVIDENCE}, {NOT_ON_ALLOWLIST}, {SOAKING}; else {ALLOWED}. The list comes before the
    /// soak so that a device off the list learns it at once. Never reverts.
    function check(bytes32 releaseId, bytes32, uint64, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (uint256)
    {
        (bool known, uint40 publishedAt) = _publishedAt(releaseId);
        if (!known) return UNKNOWN_RELEASE;
        bytes32 root = _root;
        if (root == bytes32(0)) return NO_ALLOWLIST;
        (bool enveloped, bytes calldata proof) = _ownEvidence(evidence);
        if (!enveloped) return MALFORMED_EVIDENCE;
        if (proof.length == 0) return NO_EVIDENCE;
        (bool wellFormed, bool listed) = _deviceListed(device.deviceId, proof, root, MAX_PROOF_LENGTH);
        if (!wellFormed) return MALFORMED_EVIDENCE;
        if (!listed) return NOT_ON_ALLOWLIST;
        // solhint-disable-next-line not-rely-on-time
        if (block.timestamp < uint256(publishedAt) + SOAK_SECONDS) return SOAKING;
        return ALLOWED;
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view virtual override returns (string memory) {
        if (reason == UNKNOWN_RELEASE) return "UNKNOWN_RELEASE";
        if (reason == NO_ALLOWLIST) return "NO_ALLOWLIST";
        if (reason == NO_EVIDENCE) return "NO_EVIDENCE";
        if (reason == MALFORMED_EVIDENCE) return "MALFORMED_EVIDENCE";
        if (reason == NOT_ON_ALLOWLIST) return "NOT_ON_ALLOWLIST";
        if (reason == SOAKING) return "SOAKING";
        return super.reasonName(reason);
    }
}
