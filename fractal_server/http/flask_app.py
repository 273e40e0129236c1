"""The Flask subclass with the URL conventions of the Fractal API."""
from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect


class SlashRedirect(RequestRedirect):
    """A path without its trailing slash is redirected with 307, method kept."""

    code = 307

    def get_response(self, environ=None, scope=None) -> Response:
        return Response(status=self.code, headers={"Location": self.new_url})


class OrderKeepingJSONProvider(DefaultJSONProvider):
    """Objects are written with their keys in their own order (Flask sorts them by default)."""

    sort_keys = False


class FractalFlask(Flask):
    json_provider_class = OrderKeepingJSONProvider

    def raise_routing_exception(self, request):
        """Redirect to the slash-terminated path whatever the method.

        Werkzeug only redirects when the slash-terminated rule also accepts
        the request's method; clients of the API expect 307 in every case.
        """
        error = request.routing_exception
        if isinstance(error, RequestRedirect) and not isinstance(error, SlashRedirect):
            raise SlashRedirect(error.new_url)
        if isinstance(error, (NotFound, MethodNotAllowed)) and not request.path.endswith("/"):
            adapter = self.url_map.bind_to_environ(request.environ)
            if adapter.allowed_methods(request.path + "/"):
                query = request.query_string.decode()
                raise SlashRedirect(request.base_url + "/" + (f"?{query}" if query else ""))
        super().raise_routing_exception(request)
