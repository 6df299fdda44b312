"""moto's DynamoDB handler called straight from WSGI, without its Flask app around it.

moto serves every service through one Flask app: for each request Flask pushes contexts, matches
the URL against the service's routes and builds its response, about a fifth of the CPU of a
conditional PutItem (measured: 1.31 ms a call in the WSGI app, 1.07 ms of it in the handler).
The local stack serves DynamoDB alone, whose requests are all `POST /` with an `X-Amz-Target`:
those go to the handler the Flask app would have called, with the request and response types
it would have used; anything else (moto's own API, other paths) goes to the Flask app as before.
tests/contract/test_moto_direct.py checks both answer the same.

`cache_method_names` takes another cost off every call, Flask or not: to find the handler
method for an action, moto lists the handler class's functions (`inspect.getmembers`) on every
request, a tenth of a conditional PutItem's time in moto (py-spy, `--gil`). The list is the
same for a class every time once moto and the replacements are installed, so it is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

_log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def direct_app(flask_app: WsgiApp) -> WsgiApp:
    """A WSGI app that answers DynamoDB calls through moto's handler and hands every other
    request to `flask_app` (moto's app for DynamoDB, from create_backend_app)."""
    from botocore.exceptions import ClientError
    from flask import Response
    from moto.core.request import Request
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_api import recorder
    from werkzeug.exceptions import InternalServerError

    class ServerRequest(Request):
        from_wsgi_server = True  # as moto's Flask app's request class says

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("PATH_INFO", "/") not in ("", "/")
            or "HTTP_X_AMZ_TARGET" not in environ
        ):
            return flask_app(environ, start_response)
        # What moto's convert_to_flask_response does around the handler.
        request = ServerRequest(environ)
        recorder._record_request(request)
        try:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as error:
            result = 400, {}, error.response["Error"]["Message"]
        except Exception:
            # What Flask answers (and logs) for an exception it was not told how to handle.
            _log.exception("Exception on %s [%s]", request.path, request.method)
            return InternalServerError()(environ, start_response)
        if len(result) == 3:
            status, headers, content = result
        else:
            status, headers, content = 200, {}, result
        response = Response(response=content, status=status, headers=headers)
        return response(environ, start_response)

    return app


def cache_method_names() -> bool:
    """Makes moto's per-request listing of a handler class's functions a lookup: the same
    list, worked out once per class. Install after every other replacement (they add methods
    to DynamoHandler); False (nothing changed) when this moto does not list them that way."""
    import functools

    from moto.core import responses

    listing = getattr(responses, "method_names_from_class", None)
    if listing is None:
        return False
    if not hasattr(listing, "cache_info"):  # not cached yet (install is idempotent)
        responses.method_names_from_class = functools.cache(listing)  # type: ignore[attr-defined]
    return True
