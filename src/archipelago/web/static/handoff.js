// The login cluster hands the login on: the form carrying the new token is sent at once (its
// button does the same without script).
(function () {
  "use strict";
  var form = document.getElementById("handoff");
  if (form) { form.submit(); }
}());
