// Shared by the harnesses that let Thunderbird's own account-setup code talk to the test's `mailprofile serve`
// (tests/thunderbird/harness_fetch.js, tests/thunderbird/roundtrip.js); put in front of them in the .cfg.
// harnessViaServe(host, port, fn) routes every http and https request through the server as Thunderbird's HTTP
// proxy (the server reads the absolute request URL, Host stays autoconfig.<domain>, so no DNS change is needed;
// CONNECT for https fails there, so nothing leaves the loopback), stubs the DNS SRV lookup of the Exchange leg
// (a test must not query real DNS), calls fn(signal) with an AbortSignal from the account-setup modules' own
// global (the .cfg sandbox has no AbortController; fromISP() combines signals with AbortSignal.any() there),
// and afterwards puts the proxy settings and DNS.srv back, so the mail connections that follow go direct.
async function harnessViaServe(host, port, fn) {
  const ints = [["network.proxy.type", 1], ["network.proxy.http_port", port], ["network.proxy.ssl_port", port]];
  const chars = [["network.proxy.http", host], ["network.proxy.ssl", host], ["network.proxy.no_proxies_on", ""]];
  for (const [name, value] of ints) {
    Services.prefs.setIntPref(name, value);
  }
  for (const [name, value] of chars) {
    Services.prefs.setCharPref(name, value);
  }
  Services.prefs.setBoolPref("network.dns.disablePrefetch", true);
  const { DNS } = ChromeUtils.importESModule("resource:///modules/DNS.sys.mjs");
  const srv = DNS.srv;
  DNS.srv = async () => { throw new Error("no SRV lookups in tests"); };
  try {
    const { FetchConfig } = ChromeUtils.importESModule("resource:///modules/accountcreation/FetchConfig.sys.mjs");
    const controller = new (Cu.getGlobalForObject(FetchConfig).AbortController)();
    return await fn(controller.signal);
  } finally {
    DNS.srv = srv;
    for (const [name] of [...ints, ...chars]) {
      Services.prefs.clearUserPref(name);
    }
  }
}
