// Thunderbird user.js for giulia.bianchi@esempio.it (Aruba Mail), written by mailprofile.
// Thunderbird re-applies this file over prefs.js at every start: accounts added later in the UI vanish.
// No passwords: Thunderbird asks at the first connection and keeps them in its password manager.

// Account list (the explicit Local Folders account stops Thunderbird adding one per start)
user_pref("mail.accountmanager.accounts", "account1,account2");
user_pref("mail.accountmanager.defaultaccount", "account1");
user_pref("mail.accountmanager.localfoldersserver", "server2");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.account.account2.server", "server2");

// Incoming server (imap)
user_pref("mail.server.server1.type", "imap");
user_pref("mail.server.server1.hostname", "imaps.aruba.it");
user_pref("mail.server.server1.port", 993);
user_pref("mail.server.server1.userName", "giulia.bianchi@esempio.it");
user_pref("mail.server.server1.socketType", 3);
user_pref("mail.server.server1.authMethod", 3);
user_pref("mail.server.server1.name", "giulia.bianchi@esempio.it");
user_pref("mail.server.server1.login_at_startup", true);
user_pref("mail.server.server1.check_new_mail", true);
user_pref("mail.server.server1.check_time", 10);

// Local Folders
user_pref("mail.server.server2.type", "none");
user_pref("mail.server.server2.hostname", "Local Folders");
user_pref("mail.server.server2.userName", "nobody");
user_pref("mail.server.server2.name", "Local Folders");

// Identity
user_pref("mail.identity.id1.fullName", "Giulia Bianchi");
user_pref("mail.identity.id1.useremail", "giulia.bianchi@esempio.it");
user_pref("mail.identity.id1.smtpServer", "smtp1");
user_pref("mail.identity.id1.valid", true);
user_pref("mail.identity.id1.organization", "Esempio S.r.l.");

// Outgoing server (SMTP)
user_pref("mail.smtpservers", "smtp1");
user_pref("mail.smtp.defaultserver", "smtp1");
user_pref("mail.smtpserver.smtp1.type", "smtp");
user_pref("mail.smtpserver.smtp1.hostname", "smtps.aruba.it");
user_pref("mail.smtpserver.smtp1.port", 465);
user_pref("mail.smtpserver.smtp1.username", "giulia.bianchi@esempio.it");
user_pref("mail.smtpserver.smtp1.try_ssl", 3);
user_pref("mail.smtpserver.smtp1.authMethod", 3);
user_pref("mail.smtpserver.smtp1.description", "Aruba Mail");

// Minimum TLS version
user_pref("security.tls.version.min", 3);
