import { expect } from "chai";
import { brokerEndpoint } from "../../../agent/net/mqttConnection";

// One reading of a broker URL for the device's connection and for `tracker mqtt-config` (they
// disagreed: the config wrote port 1883 for an mqtts:// URL without a port).
describe("agent/net/mqttConnection: a broker URL (ADR 0015)", () => {
  it("CAP-11.2-m-a: mqtt:// defaults to 1883, mqtts:// (TLS) to 8883; a port or an IPv6 host is taken as given", () => {
    expect(brokerEndpoint("mqtt://broker.plant")).to.deep.equal({ host: "broker.plant", port: 1883, secure: false });
    expect(brokerEndpoint("mqtts://broker.plant")).to.deep.equal({ host: "broker.plant", port: 8883, secure: true });
    expect(brokerEndpoint("mqtts://broker.plant:9883")).to.deep.equal({ host: "broker.plant", port: 9883, secure: true });
    expect(brokerEndpoint("mqtt://[::1]:1884")).to.deep.equal({ host: "::1", port: 1884, secure: false });
  });
});
