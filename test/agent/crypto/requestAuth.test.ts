import { expect } from "chai";
import { RequestAuthenticator } from "../../../agent/crypto/requestAuth";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeDeviceCredential, type DeviceCredential } from "../../../agent/crypto/deviceCredential";
import { makeDevice } from "../../helpers/serverFixture";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";

const AUDIENCE = "http://127.0.0.1:1";

/** A signed GET of `device` (with `batchId` in its credential), as the server receives it. */
function request(device: DeviceIdentity, batchId: number) {
  const credential: DeviceCredential = { ...device.credential, batchId, proof: batchId === 0 ? [] : ["0x" + "11".repeat(32)] };
  const path = "/v1/releases/0x01/manifest";
  const headers = signDeviceRequest(device.privateKey, credential.record.id, encodeDeviceCredential(credential), { audience: AUDIENCE, method: "GET", path });
  return { audience: AUDIENCE, method: "GET", path, headers };
}

describe("agent/crypto/requestAuth: the admission's ledger lookups (issue 17)", function () {
  this.timeout(30_000);

  it("CAP-11.3-d: identities asking the ledger the same question (a batch's root) share one lookup slot: a fleet arriving at once is not SERVER_BUSY; distinct questions past maxLookups are", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r)); // the ledger answers when the test says
    let asked = 0;
    const auth = new RequestAuthenticator({
      limits: { maxLookups: 2 },
      admission: {
        device: async () => {
          asked++;
          await gate;
          return undefined;
        },
        deviceLookup: (c) => (c.batchId === 0 ? undefined : `batch|${c.batchId}`),
      },
    });
    const batch = Array.from({ length: 20 }, (_, i) => makeDevice(`batch-7-${i}`, 1));
    const single = [makeDevice("single-a", 1), makeDevice("single-b", 1)];
    const together = batch.map((d) => auth.device(request(d, 7)));
    const first = auth.device(request(single[0], 0)); // the second question in flight: room for it
    let busy: unknown;
    await auth.device(request(single[1], 0)).catch((err: unknown) => (busy = err)); // a third: refused at once
    expect(busy).to.have.property("code", "SERVER_BUSY");
    release();
    const admitted = await Promise.all([...together, first]);
    expect(admitted).to.have.length(21);
    expect(asked).to.equal(21); // each identity is still asked (its own proof), in one slot per question
    // The slots are free again: the refused device is admitted now.
    expect((await auth.device(request(single[1], 0))).credential.record.id).to.equal(single[1].credential.record.id);
  });
});
