/**
 * Loads an ES module from this CommonJS code base. TypeScript (module: commonjs) rewrites
 * `import()` into `require()`, and several IPFS packages publish a broken "module-sync" export
 * (pointing at src/ files they do not ship) that `require` picks; a real dynamic import takes the
 * working "import" export instead.
 */
const dynamicImport = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<unknown>;

export async function importEsm<T>(specifier: string): Promise<T> {
  installPromiseWithResolvers();
  return (await dynamicImport(specifier)) as T;
}

/** Helia 7 and libp2p call Promise.withResolvers (Node 22+); Node 20 lacks it. */
function installPromiseWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  if (typeof P.withResolvers === "function") return;
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
