// Thunderbird user.js for anna.verdi@school.example (Scuola Esempio), written by mailprofile.
// Thunderbird re-applies this file over prefs.js at every start: accounts added later in the UI vanish.
// No passwords: Thunderbird asks at the first connection and keeps them in its password manager.

// Account list (the explicit Local Folders account stops Thunderbird adding one per start)
user_pref("mail.accountmanager.accounts", "account1,account2");
user_pref("mail.accountmanager.defaultaccount", "account1");
user_pref("mail.accountmanager.localfoldersserver", "server2");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.account.account2.server", "server2");

// Incoming server (pop3)
user_pref("mail.server.server1.type", "pop3");
user_pref("mail.server.server1.hostname", "mail.school.example");
user_pref("mail.server.server1.port", 995);
user_pref("mail.server.server1.userName", "anna.verdi@school.example");
user_pref("mail.server.server1.socketType", 3);
user_pref("mail.server.server1.authMethod", 3);
user_pref("mail.server.server1.name", "anna.verdi@school.example");
user_pref("mail.server.server1.login_at_startup", true);
user_pref("mail.server.server1.check_new_mail", true);
user_pref("mail.server.server1.check_time", 10);
user_pref("mail.server.server1.leave_on_server", true);
user_pref("mail.server.server1.delete_by_age_from_server", true);
user_pref("mail.server.server1.num_days_to_leave_on_server", 14);

// Local Folders
user_pref("mail.server.server2.type", "none");
user_pref("mail.server.server2.hostname", "Local Folders");
user_pref("mail.server.server2.userName", "nobody");
user_pref("mail.server.server2.name", "Local Folders");

// Identity
user_pref("mail.identity.id1.fullName", "Anna Verdi");
user_pref("mail.identity.id1.useremail", "anna.verdi@school.example");
user_pref("mail.identity.id1.smtpServer", "smtp1");
user_pref("mail.identity.id1.valid", true);
user_pref("mail.identity.id1.organization", "Istituto \"Galilei\" & Co.");

// Outgoing server (SMTP)
user_pref("mail.smtpservers", "smtp1");
user_pref("mail.smtp.defaultserver", "smtp1");
user_pref("mail.smtpserver.smtp1.type", "smtp");
user_pref("mail.smtpserver.smtp1.hostname", "mail.school.example");
user_pref("mail.smtpserver.smtp1.port", 587);
user_pref("mail.smtpserver.smtp1.username", "anna.verdi@school.example");
user_pref("mail.smtpserver.smtp1.try_ssl", 2);
user_pref("mail.smtpserver.smtp1.authMethod", 3);
user_pref("mail.smtpserver.smtp1.description", "Scuola Esempio");

// Minimum TLS version
user_pref("security.tls.version.min", 4);
