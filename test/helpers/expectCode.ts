import { expect } from "chai";

/** Awaits `p` and checks that it fails with an OtaError (or anything with a `code`) of this code. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).to.equal(code);
    return;
  }
  expect.fail(`expected an error with code ${code}`);
}
