/** The tracker's HTTP schemas, in one place: every route's params, query, body and answers (agent/tracker/http/routes). */
export * from "./common";
export * from "./messages";
export * from "./admin";
export * from "./fleet";
