import type { ContentStore } from "./contentStore";
import { EmbeddedStore } from "./embeddedStore";
import { KuboStore } from "./kuboStore";

export type StoreConfig = { kind: "embedded"; path: string } | { kind: "kubo"; url: string; timeoutMs: number };

/** The content store the configuration names: the embedded one by default, or a Kubo node. */
export async function openContentStore(config: StoreConfig): Promise<ContentStore> {
  return config.kind === "kubo" ? KuboStore.open({ url: config.url, timeoutMs: config.timeoutMs }) : EmbeddedStore.open({ directory: config.path });
}
