/** What an upstream tracker module tells a device: one shape for the module that writes it and the device that reads it. */

/** DEP-8.2.2: take this release of this component. */
export interface UpdateNotice {
  releaseId: string;
  component: string;
  reason: string; // e.g. "new-release", "outdated", "vulnerable-installed", "revoked-installed", "dependency", "requested"
  /** What the device brings to the release's update policy, e.g. its rollout cohort proof (hex). */
  evidence?: string;
}

export const NOTICE_KIND = "update-notice";
