"""The filter bar's choices to the URL, for the pages whose filters are a branch, a workflow and a window.

The URL is the state (`dashapp.urlstate`): a choice rewrites the query string and the page redraws
from it.  The Waterfall has its own (it pins the repository a branch was chosen in).
"""
from dash import Input, Output, State, callback, no_update

from dashapp import inputs, urlstate
from dashapp.shell import with_args

ALL = "__all__"  # the branch dropdown's "All branches"


def filters_to_url(prefix: str, selection) -> None:
    """Register the callback of the `{prefix}-branch`, `-workflow` and `-window` dropdowns; `selection`
    checks the page's stored selection (`{prefix}-selection`)."""

    @callback(Output("url", "search", allow_duplicate=True),
              Input(f"{prefix}-branch", "value"), Input(f"{prefix}-workflow", "value"),
              Input(f"{prefix}-window", "value"),
              State(f"{prefix}-selection", "data"), State("url", "search"), prevent_initial_call=True)
    def _filters_to_url(branch, workflow, window, sel, search):
        branch = inputs.text(branch, f"{prefix}-branch.value")
        workflow = inputs.text(workflow, f"{prefix}-workflow.value")
        window = inputs.choice(window, f"{prefix}-window.value", urlstate.WINDOW_VALUES)
        sel, search = selection(sel), inputs.search(search, "url.search")
        branch = None if branch in (None, ALL) else branch
        if (branch, workflow, window) == (sel.get("branch"), sel.get("workflow"), sel.get("window")):
            return no_update
        new = with_args(search, branch=branch, workflow=workflow, window=window)
        return new if new != (search or "") else no_update
