"""`dashapp.rawhtml`: markup subtrees become one component each, and draw the same document."""
import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html
from selenium.webdriver.common.by import By

from dashapp.components import static_html
from dashapp.rawhtml import RawHtml, compact


def _count(node) -> int:
    if isinstance(node, (list, tuple)):
        return sum(_count(n) for n in node)
    if isinstance(node, dash.development.base_component.Component):
        return 1 + _count(getattr(node, "children", None))
    return 0


def _table(rows: int, **row_props):
    return html.Table([
        html.Thead(html.Tr([html.Th("Line", scope="col"), html.Th("Jobs")])),
        html.Tbody([html.Tr([html.Td(dcc.Link(f"line <{i}>", href=f"/failure/{i}?window=7d", className="fi-line"),
                                     colSpan=1, title=f"t{i}"),
                             html.Td(html.Span(str(i), className="n"), style={"textAlign": "right"})], **row_props)
                    for i in range(rows)]),
    ], className="table table-sm")


def test_a_big_table_becomes_markup_that_draws_the_same():
    before = static_html(_table(20))
    compacted = compact(_table(20))
    assert isinstance(compacted, RawHtml) and compacted.tag == "table" and compacted.className == "table table-sm"
    assert static_html(compacted) == before
    # Every text escaped, the link marked for in-place navigation, the attributes kept.
    assert "line &lt;3&gt;" in compacted.html and "<script" not in compacted.html
    assert 'href="/failure/3?window=7d" data-dash-link="1" class="fi-line"' in compacted.html
    assert 'colspan="1"' in compacted.html and 'style="text-align: right"' in compacted.html


def test_components_with_ids_widgets_and_small_trees_stay():
    tree = html.Div([
        html.Div(_table(20), id="tr-causes"),  # an output: stays, its table goes
        dcc.Graph(id="chart", figure={}),
        dbc.Badge("INFRA", color="secondary"),
        html.Ul([html.Li(str(i)) for i in range(5)]),  # under the threshold
        html.Button("Send", id={"type": "al-test", "channel": "ops"}),
    ])
    out = compact(tree)
    assert out is tree and out.children[0].id == "tr-causes"
    assert isinstance(out.children[0].children, RawHtml)
    assert [type(c).__name__ for c in out.children[1:]] == ["Graph", "Badge", "Ul", "Button"]
    assert _count(out) < 15 < _count(_table(20))


def test_an_element_with_attributes_the_outer_tag_cannot_carry_keeps_its_tag_and_compacts_inside():
    tree = html.Div(html.Ul([html.Li(str(i)) for i in range(40)]), **{"data-kind": "x"}, role="list")
    out = compact(tree)
    assert out is tree and isinstance(out.children, RawHtml) and out.children.tag == "ul"
    assert static_html(out) == static_html(html.Div(html.Ul([html.Li(str(i)) for i in range(40)]),
                                                    **{"data-kind": "x"}, role="list"))


def test_markup_links_navigate_in_place_and_draw_the_table(dash_duo):
    app = dash.Dash(__name__, assets_folder="../assets", suppress_callback_exceptions=True)
    app.layout = html.Div([dcc.Location(id="url"), html.Div(id="page")])

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def _page(pathname):
        return [html.Div(pathname, id="where"), html.Div(compact(_table(40)), id="content")]

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#where", "/")
    driver = dash_duo.driver
    assert len(driver.find_elements(By.CSS_SELECTOR, "#content table.table > tbody > tr")) == 40
    assert driver.find_element(By.CSS_SELECTOR, "#content td[colspan='1']").get_attribute("title") == "t0"
    driver.execute_script("window.__notReloaded = true;")
    driver.find_element(By.CSS_SELECTOR, "#content a.fi-line").click()
    dash_duo.wait_for_text_to_equal("#where", "/failure/0")
    assert driver.execute_script("return window.__notReloaded === true && location.search") == "?window=7d"


def test_an_id_no_callback_names_travels_with_the_markup_one_a_callback_names_stays(tmp_path):
    from dashapp import create_app
    from dashapp.config import Config
    from tests.builders import store_with

    store_with(tmp_path / "s.db", []).dispose()
    app = create_app(Config.from_env({}, database_path=str(tmp_path / "s.db"), webhook_secret="s"))
    with app.server.test_request_context("/"):
        app._setup_server()  # as the first request does: the callbacks' map
        out = compact(html.Div([html.Ul([html.Li(str(i)) for i in range(40)], id="free-list", className="x"),
                                html.Ul([html.Li(str(i)) for i in range(40)], id="tr-causes")]))
    free, used = out.children
    assert isinstance(free, RawHtml) and (free.id, free.tag, free.className) == ("free-list", "ul", "x")
    assert type(used).__name__ == "Ul" and isinstance(used.children[0], html.Li)  # tr-causes: a callback's output
    app.server.extensions["buildmon"].close()
