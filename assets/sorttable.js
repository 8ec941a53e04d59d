/* Sortable markup tables (`dashapp.sorttable`): what assets/sortable.min.js leaves to us.
 * - A header sorts from the keyboard too (Enter or Space; the server gives sortable headers tabindex=0).
 * - A table the reader sorted keeps that sort when a live update draws it again: its new rows come in the
 *   server's order, so the remembered header is clicked again (twice for ascending, as a reader would). */
(function () {
  var sorted = {};  // table id -> [column index, 'ascending' | 'descending'], as the reader last left it

  document.addEventListener('keydown', function (event) {
    var th = event.target;
    if ((event.key === 'Enter' || event.key === ' ') && th.matches && th.matches('table.sortable th[tabindex]')) {
      event.preventDefault();
      th.click();
    }
  });

  document.addEventListener('sort-end', function (event) {
    var table = event.target, th = table.tHead && table.tHead.querySelector('th[aria-sort]');
    if (table.id && th) { sorted[table.id] = [th.cellIndex, th.getAttribute('aria-sort')]; }
  });

  document.addEventListener('rawhtml-drawn', function (event) {
    event.target.querySelectorAll('table.sortable[id]').forEach(function (table) {
      var want = sorted[table.id], th = want && table.tHead && table.tHead.rows[0].cells[want[0]];
      for (var i = 0; th && i < 2 && th.getAttribute('aria-sort') !== want[1]; i++) { th.click(); }
    });
  });
})();
