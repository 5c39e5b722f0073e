// Test harness appended to a .cfg (Thunderbird evaluates .cfg files with chrome privileges).
// After final-ui-startup it dumps what Thunderbird's account manager holds and, for each domain named in
// HARNESS_DOMAINS, what its own autoconfig reader makes of <install>/isp/<domain>.xml; then it saves prefs
// and quits. Output: JSON in the file named by HARNESS_OUT.
function harnessServer(s) {
  return {hostname: s.hostname, port: s.port, socketType: s.socketType, auth: s.auth,
          username: s.username, type: s.type,
          leaveMessagesOnServer: s.leaveMessagesOnServer, daysToLeaveMessagesOnServer: s.daysToLeaveMessagesOnServer};
}

async function harnessDump() {
  const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
  const res = {accounts: [], smtp: [], autoconfig: {}, tlsMin: Services.prefs.getIntPref("security.tls.version.min"),
               tlsMinLocked: Services.prefs.prefIsLocked("security.tls.version.min")};
  for (const a of MailServices.accounts.accounts) {
    const s = a.incomingServer;
    const entry = {key: a.key, type: s.type, hostname: s.hostName ?? s.hostname, port: s.port, socketType: s.socketType,
                   authMethod: s.authMethod, username: s.username, name: s.prettyName,
                   identities: a.identities.map(i => ({email: i.email, fullName: i.fullName,
                                                        organization: i.organization, smtpServerKey: i.smtpServerKey}))};
    if (s.type != "none") {
      Object.assign(entry, {loginAtStartUp: s.loginAtStartUp, doBiff: s.doBiff, biffMinutes: s.biffMinutes});
    }
    if (s.type == "imap") {
      entry.serverDirectory = s.QueryInterface(Ci.nsIImapIncomingServer).serverDirectory;
    }
    if (s.type == "pop3") {
      const p = s.QueryInterface(Ci.nsIPop3IncomingServer);
      entry.leaveMessagesOnServer = p.leaveMessagesOnServer;
      entry.deleteByAgeFromServer = p.deleteByAgeFromServer;
      entry.numDaysToLeaveOnServer = p.numDaysToLeaveOnServer;
    }
    res.accounts.push(entry);
  }
  res.defaultAccount = MailServices.accounts.defaultAccount ? MailServices.accounts.defaultAccount.key : null;
  for (const o of MailServices.outgoingServer.servers) {
    const smtp = o.QueryInterface(Ci.nsISmtpServer);
    res.smtp.push({key: o.key, type: o.type, hostname: smtp.hostname, port: o.port, socketType: o.socketType,
                   authMethod: o.authMethod, username: o.username});
  }
  const domains = (Services.env.get("HARNESS_DOMAINS") || "").split(",").filter(d => d);
  if (domains.length) {
    const { FetchConfig } = ChromeUtils.importESModule("resource:///modules/accountcreation/FetchConfig.sys.mjs");
    const signal = { aborted: false, throwIfAborted() {}, addEventListener() {}, removeEventListener() {} };
    for (const domain of domains) {
      try {
        const c = await FetchConfig.fromDisk(domain, signal);
        res.autoconfig[domain] = {id: c.id, displayName: c.displayName, domains: c.domains,
                                  incoming: [c.incoming, ...c.incomingAlternatives].map(harnessServer),
                                  outgoing: [c.outgoing, ...c.outgoingAlternatives].map(harnessServer)};
      } catch (e) {
        res.autoconfig[domain] = {error: String(e)};
      }
    }
  }
  return res;
}

harnessAtStartup(harnessDump);
