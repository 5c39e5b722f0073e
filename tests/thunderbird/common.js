// Shared by every harness: make_install (tests/test_thunderbird_real.py) appends this file to the test's
// .cfg, after the harness itself (the .cfg is one script: these declarations are hoisted, and a generated
// mozilla.cfg under test keeps its own first line, which Thunderbird skips).

// Write `text` as UTF-8 to `path`, replacing the file.
function harnessWrite(path, text) {
  const file = Cc["@mozilla.org/file/local;1"].createInstance(Ci.nsIFile);
  file.initWithPath(path);
  const stream = Cc["@mozilla.org/network/file-output-stream;1"].createInstance(Ci.nsIFileOutputStream);
  stream.init(file, 0x02 | 0x08 | 0x20, 0o644, 0);
  const conv = Cc["@mozilla.org/intl/converter-output-stream;1"].createInstance(Ci.nsIConverterOutputStream);
  conv.init(stream, "UTF-8");
  conv.writeString(text);
  conv.close();
}

// After final-ui-startup: run the harness (a function returning a promise of a JSON-able result), write its
// result (or its error) to HARNESS_OUT, save prefs if asked, and quit.
function harnessAtStartup(run, savePrefs = true) {
  Services.obs.addObserver({
    observe() {
      run().then(res => res, e => ({error: String(e), stack: String(e.stack)})).then(res => {
        harnessWrite(Services.env.get("HARNESS_OUT"), JSON.stringify(res));
        if (savePrefs) {
          Services.prefs.savePrefFile(null);
        }
        Services.startup.quit(Ci.nsIAppStartup.eForceQuit);
      });
    },
  }, "final-ui-startup");
}
