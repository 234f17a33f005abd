// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {IReleaseRegistry} from "../interfaces/IReleaseRegistry.sol";
import {ReleaseStatus} from "../interfaces/UpdateRegistryTypes.sol";
import {UpdatePolicyBase} from "./UpdatePolicyBase.sol";

/// @title Approval policy: M of N named approvers must approve a release (X.1368 App. II).
/// @notice One approver set and one threshold M per deployed policy (an approval board): attach
/// the same policy to every component the board approves for, or deploy one per board. Approvers
/// approve release ids; no device may take a release until M current approvers have approved it.
/// @dev Approvals count only while their approver stays in the set: removing an approver
/// withdraws their approvals from every release (a lost key is handled by removing it), and an
/// approver removed and added again starts afresh (each membership has its own serial number, and
/// an approval is recorded with the serial of the membership that gave it). Changing M applies to
/// every release at once, already approved ones included. Invariant: 1 <= M <= N <= {MAX_APPROVERS}.
contract ApprovalPolicy is UpdatePolicyBase {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice Fewer than M current approvers have approved the release ({approvalCount}).
    uint256 public constant NOT_ENOUGH_APPROVALS = 1;

    /// @notice How many approvers the set may hold.
    uint256 public constant MAX_APPROVERS = 16;

    /// @notice The zero address as an approver.
    error ApprovalPolicyZeroAddress();
    /// @notice `account` is already an approver.
    error ApprovalPolicyAlreadyApprover(address account);
    /// @notice `account` is not an approver.
    error ApprovalPolicyNotAnApprover(address account);
    /// @notice The set would hold more than {MAX_APPROVERS} approvers.
    error ApprovalPolicyTooManyApprovers(uint256 max);
    /// @notice M must be at least 1 and at most the number of approvers.
    error ApprovalPolicyInvalidThreshold(uint256 threshold, uint256 approvers);
    /// @notice `releaseId` is not a release of the registry.
    error ApprovalPolicyUnknownRelease(bytes32 releaseId);
    /// @notice `approver` has already approved `releaseId`.
    error ApprovalPolicyAlreadyApproved(bytes32 releaseId, address approver);
    /// @notice `approver` has not approved `releaseId`.
    error ApprovalPolicyNotApproved(bytes32 releaseId, address approver);

    /// @notice `approver` joined the set.
    event ApproverAdded(address indexed approver, address indexed by);
    /// @notice `approver` left the set; their approvals no longer count.
    event ApproverRemoved(address indexed approver, address indexed by);
    /// @notice M is now `threshold`.
    event ThresholdChanged(uint256 threshold, address indexed by); // solhint-disable-line gas-indexed-events
    /// @notice `approver` approved `releaseId`, which now has `approvals` current approvals.
    event ReleaseApproved(bytes32 indexed releaseId, address indexed approver, uint256 approvals); // solhint-disable-line gas-indexed-events
    /// @notice `approver` withdrew their approval of `releaseId`, which now has `approvals`.
    event ApprovalRevoked(bytes32 indexed releaseId, address indexed approver, uint256 approvals); // solhint-disable-line gas-indexed-events

    EnumerableSet.AddressSet private _approvers;
    uint256 private _threshold;
    uint64 private _lastSerial;
    mapping(address approver => uint64 serial) private _serials;
    mapping(bytes32 releaseId => mapping(address approver => uint64 serial)) private _approvals;

    /// @notice Starts with `initialApprovers` and M = `initialThreshold`.
    /// @param registry_ The UpdateRegistry whose administrators manage the set and whose releases
    /// are approved.
    /// @param initialApprovers The first approver set.
    /// @param initialThreshold M, between 1 and the number of approvers.
    constructor(address registry_, address[] memory initialApprovers, uint256 initialThreshold) UpdatePolicyBase(registry_) {
        for (uint256 i = 0; i < initialApprovers.length; ++i) {
            _addApprover(initialApprovers[i]);
        }
        _setThreshold(initialThreshold);
    }

    modifier onlyApprover() {
        if (_serials[msg.sender] == 0) revert ApprovalPolicyNotAnApprover(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- administrators

    /// @notice Adds `approver` to the set.
    /// @dev Requirements: caller is a registry administrator; `approver` is not zero and not in
    /// the set; the set holds fewer than {MAX_APPROVERS}. Emits an {ApproverAdded} event.
    function addApprover(address approver) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        _addApprover(approver);
    }

    /// @notice Removes `approver` from the set; their approvals stop counting.
    /// @dev Requirements: caller is a registry administrator; `approver` is in the set; M stays
    /// reachable (lower M first). Emits an {ApproverRemoved} event.
    function removeApprover(address approver) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        if (!_approvers.remove(approver)) revert ApprovalPolicyNotAnApprover(approver);
        if (_threshold > _approvers.length()) revert ApprovalPolicyInvalidThreshold(_threshold, _approvers.length());
        delete _serials[approver];
        emit ApproverRemoved(approver, msg.sender);
    }

    /// @notice Sets M, the number of current approvers a release needs.
    /// @dev Requirements: caller is a registry administrator; 1 <= `newThreshold` <= the number of
    /// approvers. Emits a {ThresholdChanged} event.
    function setThreshold(uint256 newThreshold) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        _setThreshold(newThreshold);
    }

    // ---------------------------------------------------------------- approvers

    /// @notice Approves `releaseId` as the calling approver.
    /// @dev Requirements: caller is in the set; `releaseId` is a published release; the caller
    /// has not approved it yet (in this membership). Emits a {ReleaseApproved} event.
    function approve(bytes32 releaseId) external onlyApprover {
        if (IReleaseRegistry(address(REGISTRY_ROLES)).releaseStatus(releaseId) == ReleaseStatus.None) {
            revert ApprovalPolicyUnknownRelease(releaseId);
        }
        uint64 serial = _serials[msg.sender];
        if (_approvals[releaseId][msg.sender] == serial) revert ApprovalPolicyAlreadyApproved(releaseId, msg.sender);
        _approvals[releaseId][msg.sender] = serial;
        emit ReleaseApproved(releaseId, msg.sender, approvalCount(releaseId));
    }

    /// @notice Withdraws the calling approver's approval of `releaseId`.
    /// @dev Requirements: caller is in the set and has approved `releaseId`. Emits an
    /// {ApprovalRevoked} event.
    function revokeApproval(bytes32 releaseId) external onlyApprover {
        if (_approvals[releaseId][msg.sender] != _serials[msg.sender]) revert ApprovalPolicyNotApproved(releaseId, msg.sender);
        delete _approvals[releaseId][msg.sender];
        emit ApprovalRevoked(releaseId, msg.sender, approvalCount(releaseId));
    }

    // ---------------------------------------------------------------- views

    /// @notice M: the number of current approvers a release needs.
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @notice The current approvers (in no particular order).
    function approvers() external view returns (address[] memory) {
        return _approvers.values();
    }

    /// @notice Whether `account` is in the approver set.
    function isApprover(address account) external view returns (bool) {
        return _serials[account] != 0;
    }

    /// @notice Whether `approver` is a current approver whose approval of `releaseId` counts.
    function hasApproved(bytes32 releaseId, address approver) public view returns (bool) {
        uint64 serial = _serials[approver];
        return serial != 0 && _approvals[releaseId][approver] == serial;
    }

    /// @notice How many current approvers have approved `releaseId`.
    function approvalCount(bytes32 releaseId) public view returns (uint256 count) {
        uint256 n = _approvers.length();
        for (uint256 i = 0; i < n; ++i) {
            if (hasApproved(releaseId, _approvers.at(i))) ++count;
        }
    }

    /// @inheritdoc IUpdatePolicy
    /// @dev Reason: {NOT_ENOUGH_APPROVALS} while {approvalCount} is below {threshold}. Only the
    /// release id is used.
    function check(bytes32 releaseId, bytes32, uint64, DeviceContext calldata, bytes calldata)
        external
        view
        returns (uint256)
    {
        return approvalCount(releaseId) >= _threshold ? 0 : NOT_ENOUGH_APPROVALS;
    }

    function _addApprover(address approver) private {
        if (approver == address(0)) revert ApprovalPolicyZeroAddress();
        if (_approvers.contains(approver)) revert ApprovalPolicyAlreadyApprover(approver);
        if (_approvers.length() >= MAX_APPROVERS) revert ApprovalPolicyTooManyApprovers(MAX_APPROVERS);
        _approvers.add(approver);
        _serials[approver] = ++_lastSerial;
        emit ApproverAdded(approver, msg.sender);
    }

    function _setThreshold(uint256 newThreshold) private {
        uint256 n = _approvers.length();
        if (newThreshold == 0 || newThreshold > n) revert ApprovalPolicyInvalidThreshold(newThreshold, n);
        _threshold = newThreshold;
        emit ThresholdChanged(newThreshold, msg.sender);
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view virtual override returns (string memory) {
        if (reason == NOT_ENOUGH_APPROVALS) return "NOT_ENOUGH_APPROVALS";
        return super.reasonName(reason);
    }
}
