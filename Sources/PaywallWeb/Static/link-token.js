// The pages that links in mail open (/verify-email, /reset-password, /undo-email-change): the link carries its
// token in the URL fragment (#token=...), which browsers never send to the server (no access
// log, no Referer). This copies it into the page's form, removes it from the address bar
// and history, then sends the confirmation form or puts the cursor in the password field.
// Without scripts the form asks the reader to paste the code.
(function () {
  "use strict";
  var match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(window.location.hash);
  var field = document.getElementById("token");
  if (!match || !field || !field.form) {
    return;
  }
  field.value = match[1];
  window.history.replaceState(null, "", window.location.pathname);
  if (field.form.hasAttribute("data-autosubmit")) {
    field.form.submit();
    return;
  }
  var password = document.getElementById("password");
  if (password) {
    password.focus();
  }
})();
