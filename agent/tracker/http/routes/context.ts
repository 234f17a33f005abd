import type { FastifyRequest } from "fastify";
import type { RefusalNames } from "../../../chain/policyExplanation";
import type { TrackerModule } from "../../trackerModule";

/** What the route modules share: the tracker, the reader check (bearer token), the log. */
export interface RouteContext {
  tracker: TrackerModule;
  /** Refuses a reader without the configured token (401 UNAUTHORIZED). */
  reader(req: FastifyRequest): void;
  log(line: string): void;
  refusalNames: RefusalNames;
}
