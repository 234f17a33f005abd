// merkletreejs's MerkleTree entry point alone (its package.json "exports" "./MerkleTree"): the
// package's index also loads its five other kinds of tree, some 24 kB of the device's bundle.
// moduleResolution "node" does not read "exports", so the entry's types are named here: the
// package's own.
declare module "merkletreejs/MerkleTree" {
  export { MerkleTree } from "merkletreejs";
}
