/* The first screen sent with the HTML (`#prerender`, see dashapp/__init__.py) stays over the live
 * page until the live page has drawn its own commit grid (or its empty state), then goes.  The
 * live page is laid out underneath meanwhile (hidden, not display:none, so the charts and grids
 * measure their real size). */
(function () {
  var snapshot = document.getElementById('prerender');
  var root = document.getElementById('react-entry-point');
  if (!snapshot || !root) { return; }
  var observer;
  function drawn() {
    return root.querySelector('#commit-grid-table, #wf-grid-empty, #wf-grid .empty-state') ||
      (root.querySelector('#_pages_content > *') && !root.querySelector('#waterfall-page'));
  }
  function handOver() {
    if (observer) { observer.disconnect(); }
    if (snapshot.parentNode) { snapshot.parentNode.removeChild(snapshot); }
  }
  observer = new MutationObserver(function () { if (drawn()) { handOver(); } });
  observer.observe(root, {childList: true, subtree: true});
  setTimeout(handOver, 20000);  // never keep a stale copy up if the live page cannot draw
})();
