// The staff console's municipality picker (templates/staff/deployment.html): a search field that narrows the
// list of checkboxes as one types (name, code or county; case and accents ignored: "malmo" finds Malmö), and a
// line saying how many are shown and ticked. Hidden checkboxes keep their state and are submitted as they are.
// Without this script the search field stays hidden and the whole list is shown and works.
(function () {
  "use strict";
  var form = document.querySelector("form[data-picker]");
  if (!form) return;
  var box = form.querySelector(".picker-search");
  var search = document.getElementById("picker-search");
  var status = document.getElementById("picker-status");
  var list = document.getElementById("picker-list");
  var empty = list.querySelector("[data-picker-empty]");
  var items = Array.prototype.slice.call(list.querySelectorAll("li"));
  var groups = Array.prototype.slice.call(list.querySelectorAll("[data-group]"));

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/\s+/g, " ");
  }

  // Each item is found by its own text and the names of the groups (country, county) it sits in.
  var keys = items.map(function (item) {
    var words = [item.textContent];
    for (var node = item.parentNode; node && node !== list; node = node.parentNode) {
      if (node.getAttribute && node.getAttribute("data-label")) words.push(node.getAttribute("data-label"));
    }
    return fold(words.join(" "));
  });

  function update() {
    var query = fold(search.value.trim());
    var shown = 0;
    items.forEach(function (item, index) {
      var hit = !query || keys[index].indexOf(query) !== -1;
      item.hidden = !hit;
      if (hit) shown += 1;
    });
    // Innermost groups first, so a country is hidden only when all its counties are.
    for (var i = groups.length - 1; i >= 0; i -= 1) {
      groups[i].hidden = !!query && !groups[i].querySelector("li:not([hidden])");
    }
    empty.hidden = shown !== 0;
    var chosen = list.querySelectorAll("input[type=checkbox]:checked").length;
    status.textContent = (status.getAttribute("data-template") || "")
      .replace("{shown}", String(shown)).replace("{total}", String(items.length)).replace("{chosen}", String(chosen));
  }

  search.addEventListener("input", update);
  // Enter in the search field narrows the list; it must not submit the form.
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") event.preventDefault();
  });
  list.addEventListener("change", update);
  box.hidden = false;
  update();
})();
