/* The commit grid's workflow headers (`dashapp.grid_jobs.header`) are links that expand or collapse a
 * workflow's job columns through `expand=` in the URL.  On the live page they are followed as
 * dcc.Link follows its links: the URL changes in place and Dash's page router redraws from it (no
 * reload, no scroll to the top).  In the static first screen, before the app runs, they stay plain
 * links. */
(function () {
  document.addEventListener('click', function (event) {
    var link = event.target && event.target.closest ? event.target.closest('a.wf-expand') : null;
    if (!link || event.defaultPrevented || event.button !== 0 ||
        event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) { return; }
    var live = document.getElementById('react-entry-point');
    if (!live || !live.contains(link)) { return; }
    event.preventDefault();
    window.history.pushState({}, '', link.getAttribute('href'));
    window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
  });
})();
