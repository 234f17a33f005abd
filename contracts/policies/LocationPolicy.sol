// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {UpdatePolicyBase} from "./UpdatePolicyBase.sol";

/// @title Location policy: allowed and denied regions, groups and networks (CAP-11.3-h).
/// @notice Administrators set a rule per target, a release id or a component id. A release's own
/// rule replaces its component's; a release with neither is allowed. A rule has two dimensions,
/// each with an allow list and a deny list of bytes32 labels: the device's region (a geographic
/// region or a logical group, {DeviceContext.region}) and its network ({DeviceContext.network}).
/// A device passes a dimension when its label is not denied and the allow list is empty or holds
/// it; it must pass both. Deny wins, and the reasons are checked in this order: REGION_DENIED,
/// NETWORK_DENIED, REGION_NOT_ALLOWED, NETWORK_NOT_ALLOWED.
/// @dev Membership is one flags word per (target, label), so a check costs a handful of storage
/// reads whatever the lists' length; the lists themselves are kept for the getter and for clearing.
contract LocationPolicy is UpdatePolicyBase {
    /// @notice The device's region or group is on the deny list.
    uint256 public constant REGION_DENIED = 1;
    /// @notice The region allow list is not empty and does not hold the device's region or group.
    uint256 public constant REGION_NOT_ALLOWED = 2;
    /// @notice The device's network is on the deny list.
    uint256 public constant NETWORK_DENIED = 3;
    /// @notice The network allow list is not empty and does not hold the device's network.
    uint256 public constant NETWORK_NOT_ALLOWED = 4;

    /// @notice How many labels one list of a rule may hold.
    uint256 public constant MAX_LABELS = 32;

    /// @notice One target's rule. An empty allow list allows every label not denied.
    struct LocationRule {
        bytes32[] allowedRegions;
        bytes32[] deniedRegions;
        bytes32[] allowedNetworks;
        bytes32[] deniedNetworks;
    }

    uint8 private constant ALLOWED_REGION = 1;
    uint8 private constant DENIED_REGION = 2;
    uint8 private constant ALLOWED_NETWORK = 4;
    uint8 private constant DENIED_NETWORK = 8;

    /// @notice A list holds more than {MAX_LABELS} labels.
    error LocationPolicyTooManyLabels(uint256 count, uint256 max);
    /// @notice A list holds the zero label.
    error LocationPolicyZeroLabel();
    /// @notice `label` is both allowed and denied in the same dimension, or twice in one list.
    error LocationPolicyDuplicateLabel(bytes32 label);
    /// @notice `target` has no rule to clear.
    error LocationPolicyNoRule(bytes32 target);

    /// @notice `target` (a release or component id) now has this rule, replacing any earlier one.
    event LocationRuleSet(
        bytes32 indexed target,
        bytes32[] allowedRegions,
        bytes32[] deniedRegions,
        bytes32[] allowedNetworks,
        bytes32[] deniedNetworks,
        address indexed by
    );
    /// @notice `target` has no rule any more.
    event LocationRuleCleared(bytes32 indexed target, address indexed by);

    mapping(bytes32 target => bool) private _hasRule;
    mapping(bytes32 target => LocationRule) private _rules;
    mapping(bytes32 target => mapping(bytes32 label => uint8 flags)) private _flags;

    /// @notice A policy with no rules (every device allowed until administrators set some).
    /// @param registry_ The UpdateRegistry whose administrators set the rules.
    constructor(address registry_) UpdatePolicyBase(registry_) {}

    /// @notice Sets the rule of `target` (a release id or a component id), replacing any earlier one.
    /// @dev Requirements: caller is a registry administrator; each list holds at most
    /// {MAX_LABELS} labels, none zero, none twice, and no label is both allowed and denied in one
    /// dimension (a region label may also be a network label). Emits a {LocationRuleSet} event.
    function setRule(bytes32 target, LocationRule calldata newRule) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        _clear(target);
        _hasRule[target] = true;
        LocationRule storage stored = _rules[target];
        _addLabels(target, stored.allowedRegions, newRule.allowedRegions, ALLOWED_REGION, DENIED_REGION);
        _addLabels(target, stored.deniedRegions, newRule.deniedRegions, DENIED_REGION, ALLOWED_REGION);
        _addLabels(target, stored.allowedNetworks, newRule.allowedNetworks, ALLOWED_NETWORK, DENIED_NETWORK);
        _addLabels(target, stored.deniedNetworks, newRule.deniedNetworks, DENIED_NETWORK, ALLOWED_NETWORK);
        emit LocationRuleSet(
            target, newRule.allowedRegions, newRule.deniedRegions, newRule.allowedNetworks, newRule.deniedNetworks, msg.sender
        );
    }

    /// @notice Removes the rule of `target`: a release falls back to its component's rule, a
    /// component to none (every device allowed).
    /// @dev Requirements: caller is a registry administrator; `target` has a rule. Emits a
    /// {LocationRuleCleared} event.
    function clearRule(bytes32 target) external onlyRegistryRole(ADMINISTRATOR_ROLE) {
        if (!_hasRule[target]) revert LocationPolicyNoRule(target);
        _clear(target);
        emit LocationRuleCleared(target, msg.sender);
    }

    /// @notice Whether `target` has a rule, and the rule (empty lists when it has none).
    function rule(bytes32 target) external view returns (bool exists, LocationRule memory) {
        return (_hasRule[target], _rules[target]);
    }

    /// @notice The target whose rule decides for this release: the release id if it has a rule,
    /// else the component id if it has one, else zero (every device allowed).
    function ruleTarget(bytes32 releaseId, bytes32 component) public view returns (bytes32) {
        if (_hasRule[releaseId]) return releaseId;
        if (_hasRule[component]) return component;
        return bytes32(0);
    }

    /// @inheritdoc IUpdatePolicy
    /// @dev Reasons: {REGION_DENIED}, {NETWORK_DENIED}, {REGION_NOT_ALLOWED}, {NETWORK_NOT_ALLOWED}
    /// (checked in that order). The version and evidence are not used.
    function check(bytes32 releaseId, bytes32 component, uint64, DeviceContext calldata device, bytes calldata)
        external
        view
        returns (uint256)
    {
        bytes32 target = ruleTarget(releaseId, component);
        if (target == bytes32(0)) return 0;
        mapping(bytes32 => uint8) storage flags = _flags[target];
        uint8 region = flags[device.region];
        uint8 network = flags[device.network];
        if (region & DENIED_REGION != 0) return REGION_DENIED;
        if (network & DENIED_NETWORK != 0) return NETWORK_DENIED;
        LocationRule storage stored = _rules[target];
        if (stored.allowedRegions.length != 0 && region & ALLOWED_REGION == 0) return REGION_NOT_ALLOWED;
        if (stored.allowedNetworks.length != 0 && network & ALLOWED_NETWORK == 0) return NETWORK_NOT_ALLOWED;
        return 0;
    }

    function _addLabels(bytes32 target, bytes32[] storage list, bytes32[] calldata labels, uint8 flag, uint8 opposite)
        private
    {
        if (labels.length > MAX_LABELS) revert LocationPolicyTooManyLabels(labels.length, MAX_LABELS);
        mapping(bytes32 => uint8) storage flags = _flags[target];
        for (uint256 i = 0; i < labels.length; ++i) {
            bytes32 label = labels[i];
            if (label == bytes32(0)) revert LocationPolicyZeroLabel();
            uint8 current = flags[label];
            if (current & (flag | opposite) != 0) revert LocationPolicyDuplicateLabel(label);
            flags[label] = current | flag;
            list.push(label);
        }
    }

    function _clear(bytes32 target) private {
        if (!_hasRule[target]) return;
        LocationRule storage stored = _rules[target];
        mapping(bytes32 => uint8) storage flags = _flags[target];
        _clearLabels(flags, stored.allowedRegions);
        _clearLabels(flags, stored.deniedRegions);
        _clearLabels(flags, stored.allowedNetworks);
        _clearLabels(flags, stored.deniedNetworks);
        delete _rules[target];
        delete _hasRule[target];
    }

    function _clearLabels(mapping(bytes32 => uint8) storage flags, bytes32[] storage list) private {
        for (uint256 i = 0; i < list.length; ++i) {
            delete flags[list[i]];
        }
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view virtual override returns (string memory) {
        if (reason == REGION_DENIED) return "REGION_DENIED";
        if (reason == REGION_NOT_ALLOWED) return "REGION_NOT_ALLOWED";
        if (reason == NETWORK_DENIED) return "NETWORK_DENIED";
        if (reason == NETWORK_NOT_ALLOWED) return "NETWORK_NOT_ALLOWED";
        return super.reasonName(reason);
    }
}
