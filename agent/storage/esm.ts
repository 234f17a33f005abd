/**
 * Loads an ES module from this CommonJS code base. TypeScript (module: commonjs) rewrites
 * `import()` into `require()`, and several IPFS packages publish a broken "module-sync" export
 * (pointing at src/ files they do not ship) that `require` picks; a real dynamic import takes the
 * working "import" export instead. On Node 20, Helia and libp2p need Promise.withResolvers, which
 * the process's entry point installs (agent/runtime/node20.ts).
 */
const dynamicImport = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<unknown>;

export async function importEsm<T>(specifier: string): Promise<T> {
  return (await dynamicImport(specifier)) as T;
}
