// solidity-coverage: bench and test-only contracts are not part of the product.
module.exports = {
  skipFiles: ["bench/", "mocks/"],
};
