"""Errors as JSON `{"error": "..."}` on the server's JSON routes, whatever raised them.

Flask answers its own errors (404/405 from routing, 400 from a body that is not JSON, 413 from
a body over `MAX_CONTENT_LENGTH`, 500 from an exception) with HTML pages; a client of a JSON
route should get JSON with the same status.  Each module that defines JSON routes declares them
with `json_routes(server, ...)` (the API blueprint its `/api/` prefix, the app its Dash
endpoints); one app-wide handler then answers the errors of those paths as JSON and leaves every
other path (the pages) to Flask's own handling.  A blueprint's own error handlers still come
first for its views; this one also covers the routing errors no blueprint handler sees.
"""
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

_KEY = "buildmon_json_routes"
# Headers of Flask's HTML error response that a JSON answer must not copy.
_DROP = {"content-type", "content-length"}


def json_routes(server: Flask, *routes: str) -> None:
    """Answer errors on `routes` as JSON: a route ending in `/` is a prefix, any other an exact path."""
    known = server.extensions.get(_KEY)
    if known is None:
        known = server.extensions[_KEY] = set()
        server.register_error_handler(HTTPException, _handle)
    known.update(routes)


def is_json_route(server: Flask, path: str) -> bool:
    return any(path.startswith(r) if r.endswith("/") else path == r for r in server.extensions.get(_KEY, ()))


def error_response(exc: HTTPException):
    """`{"error": description}` with the exception's status and its other headers (e.g. 405's `Allow`)."""
    response = jsonify(error=exc.description or exc.name)
    response.status_code = exc.code or 500
    for name, value in exc.get_headers():
        if name.lower() not in _DROP:
            response.headers[name] = value
    return response


def _handle(exc: HTTPException):
    from flask import current_app

    if exc.code is None or not is_json_route(current_app, request.path):
        return exc  # Flask's own response (the HTML page) for the other routes
    return error_response(exc)
