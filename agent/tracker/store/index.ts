/** The fleet database (agent/tracker/store/fleetStore.ts), its stores and the rows they hand out. */
export { FleetStore } from "./fleetStore";
export { FLEET_SCHEMA } from "./schema";
export { TAG_CHANGES_MARK, TagLimitError } from "./tags";
export type { DeviceFilter } from "./tagQuery";
export type { GroupRow } from "./groups";
export type { LedgerEventRow } from "./ledger";
export type { AnchorDb } from "./anchors";
export type { BundleRow, ConfigRow, DeviceRow, InstalledRow, ReleaseRow, ReportBody, ReportSessionRow, UpdateRequestRow } from "./rows";
