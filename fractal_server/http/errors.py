"""Error answers: every non-2xx JSON body is `{"detail": ...}`."""
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from fractal_server.runner.backend import UserSettingsError


class ApiError(Exception):
    """An application error; the view stops and the client gets `{"detail": detail}`."""

    def __init__(self, status: int, detail: Any):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def detail_response(status: int, detail: Any, headers: dict | None = None) -> Response:
    return Response(
        json.dumps({"detail": detail}),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return detail_response(error.status, error.detail)

    @app.errorhandler(UserSettingsError)
    def _user_settings_error(error: UserSettingsError):
        return detail_response(422, str(error))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return detail_response(413, f"Request body too large: the limit is {limit} bytes.")

    @app.errorhandler(HTTPException)
    def _http_exception(error: HTTPException):
        phrases = {404: "Not Found", 405: "Method Not Allowed"}
        detail = phrases.get(error.code, error.name)
        headers = dict(error.get_headers()) if error.code == 405 else None
        if headers:
            headers.pop("Content-Type", None)
        return detail_response(error.code or 500, detail, headers)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("Unhandled error while answering a request")
        return Response("Internal Server Error", status=500, mimetype="text/plain")
