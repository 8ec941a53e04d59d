/* Formatting for the build stream grid: rows stay raw RUN_COLUMNS dicts
 * (epoch seconds, GitHub status/conclusion), whether they come from the
 * server or are pushed live, and are formatted here only.
 * The glyphs follow metrics.md (a single run has no attempt history here,
 * so F shows only on the commit grid). */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});
// dash-ag-grid >= 31 reads dashAgGridComponentFunctions; older ones dashAgGridComponentFuncs.
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
  window.dashAgGridComponentFunctions || window.dashAgGridComponentFuncs || {});
window.dashAgGridComponentFuncs = dagcomponentfuncs;

var WF_GLYPH_BY_CONCLUSION = {
  success: "O", failure: "X", startup_failure: "X", timed_out: "T",
  cancelled: "C", skipped: "S", neutral: "N"
};
var WF_QUEUED = ["requested", "queued", "waiting", "pending"];
var WF_GLYPH_WORD = {
  O: "success", X: "failure", T: "timed out", C: "cancelled", S: "skipped",
  N: "neutral", "?": "running", Q: "queued"
};

dagfuncs.wfGlyph = function (row) {
  if (!row) return "";
  if (row.status === "in_progress") return "?";
  if (WF_QUEUED.indexOf(row.status) >= 0) return "Q";
  return WF_GLYPH_BY_CONCLUSION[row.conclusion] || "N";
};

dagfuncs.wfStateText = function (row) {
  if (!row) return "";
  var glyph = dagfuncs.wfGlyph(row);
  var text = WF_GLYPH_WORD[glyph] || row.conclusion || row.status || "";
  return text + (row.attempt > 1 ? " (attempt " + row.attempt + ")" : "");
};

dagfuncs.wfDuration = function (seconds) {
  if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
  var total = Math.round(Math.max(seconds, 0));
  var d = Math.floor(total / 86400), h = Math.floor((total % 86400) / 3600);
  var m = Math.floor((total % 3600) / 60), s = total % 60;
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + pad(m) + "m";
  if (m) return m + "m " + pad(s) + "s";
  return s + "s";
};

/* A finished run shows its build time; an unfinished one what it is doing. */
dagfuncs.wfRunDuration = function (row) {
  if (!row) return "";
  if (row.status === "completed") {
    if (row.endtime && row.starttime) return dagfuncs.wfDuration(row.endtime - row.starttime);
    return dagfuncs.wfDuration(row.runtime);
  }
  if (row.status === "in_progress" && row.starttime) {
    return "running " + dagfuncs.wfDuration(Date.now() / 1000 - row.starttime);
  }
  return "waiting";
};

dagfuncs.wfAgo = function (epoch) {
  if (!epoch) return "—";
  var delta = Math.max(Date.now() / 1000 - epoch, 0);
  if (delta >= 86400) return Math.floor(delta / 86400) + "d ago";
  if (delta >= 3600) return Math.floor(delta / 3600) + "h ago";
  if (delta >= 60) return Math.floor(delta / 60) + "m ago";
  return "just now";
};

dagfuncs.wfUtc = function (epoch) {
  if (!epoch) return "";
  return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
};

dagfuncs.wfCommitTitle = function (row) {
  return row.title || (row.message || "").split("\n")[0];
};

dagfuncs.wfCommitText = function (row) {
  if (!row) return "";
  return (row.sha || "").slice(0, 7) + "  " + dagfuncs.wfCommitTitle(row);
};

/* This site's page of a commit, exactly as dashapp.tables.commit_href writes it: `/commit/<sha>?repo=<repo>`
 * (the repo quoted as Python's urlencode quotes it: encodeURIComponent leaves !'()* and writes a space as
 * %20), `/commit/<sha>` without a repo; null when `sha` is not 1 to 64 letters and digits (nothing else may go
 * into the path) or the repo cannot be encoded (a lone surrogate). */
dagfuncs.wfCommitHref = function (repo, sha) {
  if (typeof sha !== "string" || !/^[0-9A-Za-z]{1,64}$/.test(sha)) return null;
  if (typeof repo !== "string" || repo === "") return "/commit/" + sha;
  try {
    return "/commit/" + sha + "?repo=" + encodeURIComponent(repo).replace(/[!'()*]/g, function (c) {
      return "%" + c.charCodeAt(0).toString(16).toUpperCase();
    }).replace(/%20/g, "+");
  } catch (e) {
    return null;
  }
};

dagcomponentfuncs.RunGlyph = function (props) {
  var row = props.data;
  var glyph = dagfuncs.wfGlyph(row);
  var cls = "wf-glyph glyph-" + (glyph === "?" ? "R" : glyph);
  return React.createElement("span", {className: cls, "aria-label": dagfuncs.wfStateText(row)}, glyph);
};

/* `url` when it may become a link (as domain.text.link_url says): an absolute http(s) URL with a host,
 * once stripped of what browsers ignore; else null.  Row URLs are data (a payload can say `javascript:`). */
var WF_URL_EDGES = /^[\u0000-\u0020]+|[\u0000-\u0020]+$/g;
var WF_URL_BAD = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\s\\]/;
dagfuncs.wfLinkUrl = function (url) {
  if (typeof url !== "string") return null;
  var text = url.replace(WF_URL_EDGES, "").replace(/[\t\n\r]/g, "");
  if (!/^https?:\/\//i.test(text) || WF_URL_BAD.test(text)) return null;
  try {
    var parsed = new URL(text);
    if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || !parsed.hostname) return null;
  } catch (e) {
    return null;
  }
  return wfHostOk(text) ? text : null;
};

/* The host as written (browsers accept `{`, `*` and symbols there; link_url does not): ASCII letters, digits,
 * `.`, `_`, `-` and other scripts' letters, marks and digits, or a bracketed IPv6 address. */
function wfHostOk(text) {
  var authority = text.slice(text.indexOf("://") + 3).split(/[\/?#]/)[0];
  var host = authority.slice(authority.lastIndexOf("@") + 1);
  if (host.charAt(0) === "[") return /^\[[0-9a-f:.]+\](:\d*)?$/i.test(host);
  host = host.replace(/:\d*$/, "");
  return host.length > 0 && Array.from(host).every(function (c) {
    return /^[A-Za-z0-9._-]$/.test(c) || (c > "\x7f" && /^[\p{L}\p{M}\p{N}]$/u.test(c));
  });
}

/* The workflow name, linking to the run on GitHub (text alone when the run's URL is not http(s)). */
dagcomponentfuncs.RunLink = function (props) {
  var row = props.data || {};
  var url = dagfuncs.wfLinkUrl(row.url);
  var text = props.value === null || props.value === undefined ? "" : String(props.value);
  if (!url) return text;
  return React.createElement("a", {href: url, target: "_blank", rel: "noopener", className: "run-link"},
    text || "run");
};

/* A sha's first 7 characters linking to its commit's page here, text alone when it cannot be linked.  The link
 * carries `data-dash-link`: assets/rawhtml.js follows it in place, as a dcc.Link drawn as markup. */
function wfShaLink(repo, sha) {
  var href = dagfuncs.wfCommitHref(repo, sha);
  var short = typeof sha === "string" ? sha.slice(0, 7) : "";
  return href ? React.createElement("a", {href: href, "data-dash-link": "1", className: "commit-link"}, short)
    : React.createElement("span", null, short);
}

/* A run's commit: its short sha linking to its page, then its title, as text. */
dagcomponentfuncs.CommitLink = function (props) {
  var row = props.data || {};
  return React.createElement("span", null, wfShaLink(row.repo, row.sha), " ", dagfuncs.wfCommitTitle(row));
};
