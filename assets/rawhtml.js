/* `dashapp.rawhtml.RawHtml`: an element holding markup the server built and escaped (the commit grid, and
 * the tables `dashapp.rawhtml.compact` turned into markup). */
(function () {
  var TAG = /^[a-z][a-z0-9]*$/;
  window.buildmon_components = Object.assign(window.buildmon_components || {}, {
    RawHtml: function RawHtml(props) {
      var React = window.React, tag = TAG.test(props.tag || '') ? props.tag : 'div', ref = React.useRef(null);
      // Scripts that enhance the markup (assets/sorttable.js) hear when new markup is in place.
      React.useEffect(function () {
        if (ref.current) { ref.current.dispatchEvent(new CustomEvent('rawhtml-drawn', {bubbles: true})); }
      }, [props.html]);
      return React.createElement(tag, {
        id: props.id, className: props.className, style: props.style, title: props.title, ref: ref,
        dangerouslySetInnerHTML: {__html: props.html || ''}
      });
    }
  });

  /* A dcc.Link drawn as markup (`a[data-dash-link]`; the grids' commit links too, `CommitLink` in
   * assets/dashAgGridFunctions.js) is followed as dcc.Link follows it: the URL changes in place and Dash's
   * page router draws the page (no reload).  In the static first screen, before the app runs, and with a
   * modifier key (a new tab), it stays a plain link. */
  document.addEventListener('click', function (event) {
    var link = event.target && event.target.closest ? event.target.closest('a[data-dash-link]') : null;
    if (!link || event.defaultPrevented || event.button !== 0 || link.target ||
        event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) { return; }
    var live = document.getElementById('react-entry-point');
    var href = link.getAttribute('href') || '';
    if (!live || !live.contains(link) || href.charAt(0) !== '/' || href.charAt(1) === '/') { return; }
    event.preventDefault();
    window.history.pushState({}, '', href);
    window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
    window.scrollTo(0, 0);
  });
})();
