// The console's one script: the live character and SMS part counter of a message, and the Jalali
// date picker on fields marked data-jdp. The pages work without it (the check page counts parts on the
// server). Loaded with the page's CSP nonce; it adds no inline style or script.
(function () {
  "use strict";
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€\f";
  var FA = "۰۱۲۳۴۵۶۷۸۹";

  function count(text) {
    // 3GPP TS 23.038 / 23.040: GSM-7 is 160 septets in one part, 153 per part after that (an extension
    // character takes two and is never split); anything else is UCS-2: 70 units, then 67 per part.
    text = text.replace(/ي/g, "ی").replace(/ك/g, "ک");
    var gsm = true, septets = 0, units = 0, i, ch;
    for (i = 0; i < text.length; i++) {
      ch = text.charAt(i);
      if (GSM.indexOf(ch) >= 0) { septets += 1; }
      else if (EXT.indexOf(ch) >= 0) { septets += 2; }
      else { gsm = false; }
    }
    if (gsm) {
      return { chars: septets, parts: septets <= 160 ? 1 : Math.ceil(septets / 153), alphabet: "GSM-7" };
    }
    units = text.length; // UTF-16 code units: an emoji is two, as in UCS-2
    return { chars: units, parts: units <= 70 ? 1 : Math.ceil(units / 67), alphabet: "UCS-2" };
  }

  function digits(value) {
    var text = String(value);
    if (document.documentElement.lang !== "fa") { return text; }
    return text.replace(/[0-9]/g, function (d) { return FA.charAt(+d); });
  }

  function wire(area) {
    var out = document.getElementById(area.getAttribute("data-counter"));
    if (!out) { return; }
    function show() {
      var c = count(area.value);
      var template = out.getAttribute(c.parts === 1 ? "data-one" : "data-many") || "{chars} / {parts}";
      out.textContent = template.replace("{chars}", digits(c.chars)).replace("{parts}", digits(c.parts))
        .replace("{alphabet}", c.alphabet);
    }
    area.addEventListener("input", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var areas = document.querySelectorAll("textarea[data-counter]"), i;
    for (i = 0; i < areas.length; i++) { wire(areas[i]); }
    if (window.jalaliDatepicker && document.querySelector("input[data-jdp]")) {
      window.jalaliDatepicker.startWatch({
        time: true, hasSecond: false, autoReadOnlyInput: false, persianDigits: document.documentElement.lang === "fa"
      });
    }
  });
})();
