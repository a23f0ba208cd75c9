// A new provider's form: what to register at the provider ends in the provider's ID, so the
// values shown (<code data-template="…<your-id>…">) follow the ID input as it is typed. The
// server shows the same values for the ID it last received, so without this script the page
// still says what to register, only not before a submit.
document.addEventListener("DOMContentLoaded", function () {
  var input = document.getElementById("provider-id");
  var region = document.querySelector("[data-placeholder]");
  if (!input || !region) {
    return;
  }
  var placeholder = region.getAttribute("data-placeholder");
  var values = region.querySelectorAll("[data-template]");
  // The rule of ProviderId (src/upstream/provider.rs): 1 to 64 of a-z, 0-9 and -, not -first.
  var valid = /^[a-z0-9][a-z0-9-]{0,63}$/;
  function update() {
    var id = input.value.trim();
    var shown = valid.test(id) ? id : placeholder;
    values.forEach(function (value) {
      var next = value.getAttribute("data-template").split(placeholder).join(shown);
      if (value.textContent !== next) {
        value.textContent = next;
      }
    });
  }
  input.addEventListener("input", update);
  update();
});
