// Harness for tests/test_serve_thunderbird.py, appended to a .cfg (chrome privileges) after serve_proxy.js. After
// final-ui-startup it routes Thunderbird's http(s) through the test's `mailprofile serve` on 127.0.0.1
// (harnessViaServe), then asks Thunderbird's own FetchConfig.fromISP() for the domain, exactly as the
// account wizard does, and dumps what its parser made of the answer. HARNESS_* values are filled in by the test.
// HARNESS_MODE "isp": FetchConfig.fromISP() (Mozilla autoconfig); "exchange": fetchConfigFromExchange() (the
// Autodiscover POX leg, with the password Thunderbird would send as Basic auth on https).
const HARNESS_FETCH = {proxyPort: HARNESS_PROXY_PORT, domain: HARNESS_DOMAIN, email: HARNESS_EMAIL,
                       mode: HARNESS_MODE, password: HARNESS_PASSWORD};

async function harnessFetch() {
  const c = await harnessViaServe("127.0.0.1", HARNESS_FETCH.proxyPort, async signal => {
    if (HARNESS_FETCH.mode == "exchange") {
      const { fetchConfigFromExchange } = ChromeUtils.importESModule(
        "resource:///modules/accountcreation/ExchangeAutoDiscover.sys.mjs");
      return fetchConfigFromExchange(HARNESS_FETCH.domain, HARNESS_FETCH.email, signal, null,
                                     HARNESS_FETCH.password, async () => { throw new Error("no redirect expected"); });
    }
    const { FetchConfig } = ChromeUtils.importESModule("resource:///modules/accountcreation/FetchConfig.sys.mjs");
    return FetchConfig.fromISP(HARNESS_FETCH.domain, HARNESS_FETCH.email, signal);
  });
  const server = s => ({hostname: s.hostname, port: s.port, socketType: s.socketType, auth: s.auth,
                        username: s.username, type: s.type});
  return {source: c.source, subSource: c.subSource, id: c.id, displayName: c.displayName, domains: c.domains,
          incoming: [c.incoming, ...c.incomingAlternatives].map(server),
          outgoing: [c.outgoing, ...c.outgoingAlternatives].map(server)};
}

harnessAtStartup(harnessFetch, false);
