import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { readBoundedBody } from "../../../agent/net/boundedBody";
import { refusalOf } from "../../../agent/net/serverAnswer";
import { ERROR_ANSWER_MAX_BYTES } from "../../../agent/core/wireLimits";
import { expectCode } from "../../helpers/expectCode";

/** A server on 127.0.0.1 that answers every request with `handler`. */
async function serve(handler: http.RequestListener) {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => (server.closeAllConnections(), server.close()) };
}

describe("agent/net/boundedBody: answers read up to a bound (issue 15)", () => {
  it("reads a body within the bound whole, and refuses a longer one by its content-length or as it streams (ANSWER_TOO_LARGE)", async () => {
    const s = await serve((req, res) => {
      if (req.url === "/short") return void res.end("hello");
      if (req.url === "/declared") return void (res.writeHead(200, { "content-length": String(10 * 1024 * 1024) }), res.write("x".repeat(1024)));
      res.writeHead(200); // chunked, no length: 1 MiB
      for (let i = 0; i < 16; i++) res.write(Buffer.alloc(64 * 1024, 0x78));
      res.end();
    });
    try {
      expect((await readBoundedBody(await fetch(s.url + "short"), 5, "the short one")).toString()).to.equal("hello");
      await expectCode(readBoundedBody(await fetch(s.url + "short"), 4, "the short one"), "ANSWER_TOO_LARGE");
      await expectCode(readBoundedBody(await fetch(s.url + "declared"), 4096, "the declared one"), "ANSWER_TOO_LARGE");
      await expectCode(readBoundedBody(await fetch(s.url + "streamed"), 100_000, "the streamed one"), "ANSWER_TOO_LARGE");
    } finally {
      s.close();
    }
  });

  it(`finding: a firmware server's refusal is read up to ${ERROR_ANSWER_MAX_BYTES} bytes: a huge one is not the server's code, and costs no memory`, async () => {
    const s = await serve((req, res) => {
      if (req.url === "/refusal")
        return void (res.writeHead(403, { "content-type": "application/json" }), res.end('{"error": {"code": "KEY_NOT_GRANTED", "message": "no key"}}'));
      res.writeHead(403, { "content-type": "application/json" });
      res.write('{"error": {"code": "KEY_NOT_GRANTED", "message": "');
      let left = 64; // MiB
      const pump = () => {
        while (left-- > 0) if (!res.write(Buffer.alloc(1024 * 1024, 0x61))) return void res.once("drain", pump);
        res.end('"}}');
      };
      pump();
    });
    try {
      const ok = await refusalOf(await fetch(s.url + "refusal"), "fetching");
      expect([ok.code, ok.status]).to.deep.equal(["KEY_NOT_GRANTED", 403]);
      expect(ok.details.serverTime).to.be.a("number");
      const huge = await refusalOf(await fetch(s.url + "huge"), "fetching");
      expect([huge.code, huge.status]).to.deep.equal(["ANSWER_TOO_LARGE", 403]);
      expect(huge.message.length).to.be.below(2_000);
    } finally {
      s.close();
    }
  });
});
