// js-ipfs 0.66's dependencies call Promise.withResolvers, which Node 22 has and Node 20 lacks.
// Loaded into the daemon with NODE_OPTIONS="--import <absolute path of this file>".
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
