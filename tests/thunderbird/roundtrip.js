// Test harness appended to a .cfg (Thunderbird evaluates .cfg files with chrome privileges), for the mail round
// trip (tests/test_thunderbird_roundtrip.py). After final-ui-startup it
//  0. with HARNESS_AUTOCONFIG_DOMAIN: creates the account the way the account wizard does from an autoconfig
//     file: fetches it over HTTP from the test's `mailprofile serve` on HARNESS_SERVE_HOST:HARNESS_SERVE_PORT
//     (FetchConfig.fromISP, through harnessViaServe() of serve_proxy.js, which comes first in the .cfg), fills
//     in the address, name and password (AccountConfig.replaceVariables) and creates it with "remember
//     password" (CreateInBackend);
//  1. otherwise puts the password (HARNESS_PASSWORD) into Thunderbird's login manager for every configured
//     server, as a user does when Thunderbird asks and "remember password" is ticked;
//  2. gets new mail for the default account through Thunderbird's own POP3/IMAP code and lists the subjects
//     now in its Inbox;
//  3. sends HARNESS_SEND_FILE (an RFC 5322 message) to HARNESS_SEND_TO through the identity's SMTP server;
// then writes JSON to HARNESS_OUT and quits. Every step records its error instead of stopping the others.
function harnessUrlListener() {
  let done;
  const promise = new Promise(resolve => { done = resolve; });
  return {
    promise,
    listener: {
      QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
      OnStartRunningUrl() {},
      OnStopRunningUrl(url, exitCode) { done(exitCode); },
    },
  };
}

async function harnessCreateFromAutoconfig(MailServices) {
  const module = name => ChromeUtils.importESModule(`resource:///modules/accountcreation/${name}.sys.mjs`);
  const { FetchConfig } = module("FetchConfig");
  const { AccountConfig } = module("AccountConfig");
  const { CreateInBackend } = module("CreateInBackend");
  const config = await harnessViaServe(Services.env.get("HARNESS_SERVE_HOST"),
                                      parseInt(Services.env.get("HARNESS_SERVE_PORT"), 10),
                                      signal => FetchConfig.fromISP(Services.env.get("HARNESS_AUTOCONFIG_DOMAIN"),
                                                                    Services.env.get("HARNESS_EMAIL"), signal));
  AccountConfig.replaceVariables(config, Services.env.get("HARNESS_NAME"), Services.env.get("HARNESS_EMAIL"),
                                 Services.env.get("HARNESS_PASSWORD"));
  config.rememberPassword = true;
  const account = await CreateInBackend.createAccountInBackend(config);
  MailServices.accounts.defaultAccount = account;
  const s = account.incomingServer;
  const smtp = MailServices.outgoingServer.getServerByIdentity(account.defaultIdentity).QueryInterface(Ci.nsISmtpServer);
  const entry = {source: config.source, subSource: config.subSource, type: s.type, hostname: s.hostName ?? s.hostname, port: s.port, socketType: s.socketType,
                 username: s.username, smtp: {hostname: smtp.hostname, port: smtp.port, socketType: smtp.socketType,
                                              username: smtp.username}};
  if (s.type == "pop3") {
    entry.leaveMessagesOnServer = s.QueryInterface(Ci.nsIPop3IncomingServer).leaveMessagesOnServer;
  }
  return entry;
}

async function harnessListLogins() {
  return (await Services.logins.getAllLogins()).map(l => ({origin: l.origin, username: l.username}));
}

async function harnessAddLogins(MailServices, password) {
  const added = [];
  const add = async (origin, username) => {
    const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
    login.init(origin, null, origin, username, password, "", "");
    await Services.logins.addLoginAsync(login);
    added.push({origin, username});
  };
  for (const a of MailServices.accounts.accounts) {
    const s = a.incomingServer;
    if (s.type == "pop3" || s.type == "imap") {
      // The origin Thunderbird searches: <localStoreType>://<host> (MsgIncomingServer.sys.mjs _getServerURI).
      await add(`${s.localStoreType}://${encodeURIComponent(s.hostName ?? s.hostname)}`, s.username);
    }
  }
  for (const o of MailServices.outgoingServer.servers) {
    const smtp = o.QueryInterface(Ci.nsISmtpServer);
    await add(`smtp://${smtp.hostname}`, o.username);  // SmtpServer.sys.mjs _getServerURISpec
  }
  return added;
}

function harnessSubjects(folder) {
  const subjects = [];
  for (const hdr of folder.messages) {
    subjects.push(hdr.mime2DecodedSubject);
  }
  return subjects;
}

async function harnessFetch(MailServices) {
  const account = MailServices.accounts.defaultAccount;
  const server = account.incomingServer;
  let inbox = server.rootFolder.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox);
  if (!inbox && server.type == "imap") {
    // A new IMAP account knows no folders until it has listed them on the server.
    const { promise, listener } = harnessUrlListener();
    MailServices.imap.discoverAllFolders(server.rootFolder, listener, null);
    await promise;
    inbox = server.rootFolder.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox);
  }
  const { setTimeout } = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
  const expected = Services.env.get("HARNESS_EXPECT_SUBJECT");
  const attempts = parseInt(Services.env.get("HARNESS_FETCH_ATTEMPTS") || "2", 10);
  let exitCode;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    // Thunderbird's own check at startup (login_at_startup) may hold the server; then a second try, as a
    // user clicks "Get Messages" again.
    const { promise, listener } = harnessUrlListener();
    if (server.type == "pop3") {
      MailServices.pop3.GetNewMail(null, listener, inbox, server);
    } else {
      inbox.QueryInterface(Ci.nsIMsgImapMailFolder).updateFolderWithListener(null, listener);
    }
    exitCode = await promise;
    // IMAP reports the update done before the new headers are all in the folder's database: wait (a little)
    // for the expected subject, as a user watches the Inbox fill.
    for (let i = 0; i < 50 && expected && !harnessSubjects(inbox).includes(expected); i++) {
      await new Promise(resolve => setTimeout(resolve, 100));
    }
    if (exitCode == 0 || harnessSubjects(inbox).includes(expected)) {
      break;
    }
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
  return {account: account.key, type: server.type, exitCode, subjects: harnessSubjects(inbox)};
}

async function harnessSend(MailServices) {
  const identity = MailServices.accounts.defaultAccount.defaultIdentity;
  const smtp = MailServices.outgoingServer.getServerByIdentity(identity);
  const file = Cc["@mozilla.org/file/local;1"].createInstance(Ci.nsIFile);
  file.initWithPath(Services.env.get("HARNESS_SEND_FILE"));
  const recipients = MailServices.headerParser.parseEncodedHeaderW(Services.env.get("HARNESS_SEND_TO"));
  let done;
  const stopped = new Promise(resolve => { done = resolve; });
  smtp.sendMailMessage(file, recipients, [], identity, identity.email, null, null, false,
                       Services.env.get("HARNESS_SEND_ID"), {
    QueryInterface: ChromeUtils.generateQI(["nsIMsgOutgoingListener"]),
    onSendStart() {},
    onSendStop(serverURI, exitCode, secInfo, errorMessage) { done({exitCode, errorMessage: errorMessage || null}); },
  });
  return {server: smtp.key, ...(await stopped)};
}

async function harnessRoundTrip() {
  const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
  const { setTimeout } = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
  const limit = parseInt(Services.env.get("HARNESS_STEP_SECONDS") || "20", 10) * 1000;
  const res = {};
  const started = Date.now();
  const step = async (name, fn) => {
    // A step that never finishes (a server that does not answer) is reported, not waited for forever.
    const timeout = new Promise(resolve => setTimeout(() => resolve({error: `timed out after ${limit} ms`}), limit));
    try {
      res[name] = await Promise.race([fn(), timeout]);
    } catch (e) {
      res[name] = {error: String(e), stack: String(e.stack)};
    }
    res.ms = res.ms || {};
    res.ms[name] = Date.now() - started;  // when each step ended (for a failure's context)
    harnessWrite(Services.env.get("HARNESS_OUT"), JSON.stringify(res));
  };
  if (Services.env.get("HARNESS_AUTOCONFIG_DOMAIN")) {
    await step("created", () => harnessCreateFromAutoconfig(MailServices));
    await step("logins", () => harnessListLogins());
  } else {
    await step("logins", () => harnessAddLogins(MailServices, Services.env.get("HARNESS_PASSWORD")));
  }
  await step("fetch", () => harnessFetch(MailServices));
  if (Services.env.get("HARNESS_SEND_FILE")) {
    await step("send", () => harnessSend(MailServices));
  }
  return res;
}

harnessAtStartup(harnessRoundTrip);
