/* `dashapp.tables.RawHtml`: a div holding markup the server built and escaped (the commit grid). */
window.buildmon_components = Object.assign(window.buildmon_components || {}, {
  RawHtml: function RawHtml(props) {
    return window.React.createElement('div', {
      id: props.id, className: props.className, dangerouslySetInnerHTML: {__html: props.html || ''}
    });
  }
});
