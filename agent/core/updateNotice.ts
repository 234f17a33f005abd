/** What an upstream tracker module tells a device: one shape for the module that writes it and the device that reads it. */

/** DEP-8.2.2: take this release of this component. */
export interface UpdateNotice {
  releaseId: string;
  component: string;
  reason: string; // e.g. "new-release", "outdated", "vulnerable-installed", "revoked-installed", "dependency", "requested"
  /** What the device brings to the release's update policy, e.g. its rollout cohort proof (hex). */
  evidence?: string;
  /**
   * The newest ledger block the module had read when it issued the notice (issue 16): a floor the
   * device's own view of the ledger must reach, so that a frozen view is seen. Absent from modules
   * before issue 16.
   */
  ledgerBlock?: number;
  /**
   * An administrator's deadline for this release, in ms since the epoch (issue 19, item 11): after
   * it the device installs the release even though its update window is closed. Absent: none.
   */
  deadline?: number;
  /** With a deadline: after it, a pin of the component to another version gives way too (the administrator said so). */
  overridePin?: boolean;
  /** `releaseId` is a release bundle's id (docs/adr/0019): its members are installed together; `component` is its first member's. */
  bundle?: boolean;
}

export const NOTICE_KIND = "update-notice";
