// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {UpdatePolicyBase} from "./UpdatePolicyBase.sol";

/// @title Maintenance window policy: updates only at certain UTC times of day and days of week.
/// @notice The example of a custom rule (X.1368 App. II). One window per deployed policy: from
/// `startMinute` (inclusive) to `endMinute` (exclusive), in minutes after UTC midnight, on the
/// weekdays of the `weekdays` mask (bit 0 = Monday ... bit 6 = Sunday, ISO 8601 order).
/// - `startMinute < endMinute`: the window lies within one day.
/// - `startMinute > endMinute`: it wraps midnight (e.g. 22:00-02:00); the part after midnight
///   belongs to the day it started on, so a Friday 22:00-02:00 window is open on Saturday at 01:00
///   and closed on Friday at 01:00 unless Thursday is in the mask too.
/// - `startMinute == endMinute`: the whole day, so only the weekdays restrict.
/// @dev Uses block.timestamp: the window is as exact as the chain's clock (seconds of drift on
/// Ethereum-like chains), which is plenty for windows of minutes or hours.
contract MaintenanceWindowPolicy is UpdatePolicyBase {
    /// @notice The block's time is outside the window (time of day or weekday).
    uint256 public constant OUTSIDE_WINDOW = 1;

    /// @notice Minutes in a UTC day; window bounds lie in [0, MINUTES_PER_DAY).
    uint16 public constant MINUTES_PER_DAY = 1440;
    /// @notice The weekday mask of every day.
    uint8 public constant EVERY_DAY = 0x7f;

    struct Window {
        uint16 startMinute;
        uint16 endMinute;
        uint8 weekdays;
    }

    /// @notice A window bound that is not a minute of the day.
    error MaintenanceWindowPolicyInvalidMinute(uint256 minute);
    /// @notice A weekday mask with no day, or with bits above bit 6.
    error MaintenanceWindowPolicyInvalidWeekdays(uint256 weekdays);

    /// @notice The window is now `startMinute`..`endMinute` UTC on the `weekdays` mask.
    event WindowSet(uint16 startMinute, uint16 endMinute, uint8 weekdays, address indexed by); // solhint-disable-line gas-indexed-events

    Window private _window;

    /// @notice Starts with the given window.
    /// @param registry_ The UpdateRegistry whose administrators may change the window.
    /// @param startMinute First minute of the window after UTC midnight.
    /// @param endMinute First minute after the window (equal to `startMinute`: the whole day).
    /// @param weekdays Mask of the days the window opens on (bit 0 = Monday; {EVERY_DAY} for all).
    constructor(address registry_, uint16 startMinute, uint16 endMinute, uint8 weekdays) UpdatePolicyBase(registry_) {
        _setWindow(startMinute, endMinute, weekdays);
    }

    /// @notice Replaces the window.
    /// @dev Requirements: caller is a registry administrator; both bounds below
    /// {MINUTES_PER_DAY}; `weekdays` non-zero and within {EVERY_DAY}. Emits a {WindowSet} event.
    function setWindow(uint16 startMinute, uint16 endMinute, uint8 weekdays)
        external
        onlyRegistryRole(ADMINISTRATOR_ROLE)
    {
        _setWindow(startMinute, endMinute, weekdays);
    }

    /// @notice The window: its bounds in minutes after UTC midnight and its weekday mask.
    function window() external view returns (uint16 startMinute, uint16 endMinute, uint8 weekdays) {
        Window memory w = _window;
        return (w.startMinute, w.endMinute, w.weekdays);
    }

    /// @notice Whether the window is open at `timestamp` (Unix seconds, UTC).
    function isOpenAt(uint256 timestamp) public view returns (bool) {
        Window memory w = _window;
        uint256 minute = (timestamp / 60) % MINUTES_PER_DAY;
        uint256 day = timestamp / 1 days;
        if (w.startMinute < w.endMinute) {
            if (minute < w.startMinute || minute >= w.endMinute) return false;
        } else if (w.startMinute > w.endMinute) {
            if (minute < w.endMinute) {
                if (day == 0) return false; // before the epoch's first midnight: no day before
                --day; // the part after midnight belongs to the day the window opened
            } else if (minute < w.startMinute) {
                return false;
            }
        }
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        return (w.weekdays >> ((day + 3) % 7)) & 1 == 1;
    }

    /// @inheritdoc IUpdatePolicy
    /// @dev Reason: {OUTSIDE_WINDOW} when the window is closed at block.timestamp. Nothing of the
    /// release or the device is used.
    function check(bytes32, bytes32, uint64, DeviceContext calldata, bytes calldata) external view returns (uint256) {
        // solhint-disable-next-line not-rely-on-time
        return isOpenAt(block.timestamp) ? 0 : OUTSIDE_WINDOW;
    }

    function _setWindow(uint16 startMinute, uint16 endMinute, uint8 weekdays) private {
        if (startMinute >= MINUTES_PER_DAY) revert MaintenanceWindowPolicyInvalidMinute(startMinute);
        if (endMinute >= MINUTES_PER_DAY) revert MaintenanceWindowPolicyInvalidMinute(endMinute);
        if (weekdays == 0 || weekdays > EVERY_DAY) revert MaintenanceWindowPolicyInvalidWeekdays(weekdays);
        _window = Window({startMinute: startMinute, endMinute: endMinute, weekdays: weekdays});
        emit WindowSet(startMinute, endMinute, weekdays, msg.sender);
    }

    /// @inheritdoc UpdatePolicyBase
    function reasonName(uint256 reason) public view virtual override returns (string memory) {
        if (reason == OUTSIDE_WINDOW) return "OUTSIDE_WINDOW";
        return super.reasonName(reason);
    }
}
