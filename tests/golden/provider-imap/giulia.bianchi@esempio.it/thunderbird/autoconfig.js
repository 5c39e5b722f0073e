// Copy to <Thunderbird install>/defaults/pref/autoconfig.js; mozilla.cfg goes beside the thunderbird binary.
pref("general.config.filename", "mozilla.cfg");
pref("general.config.obscure_value", 0);
