"""The Blueprint every resource uses: flask-smorest's, parsing JSON bodies with the app's decoder."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import Request, current_app
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


class AppJSONParser(FlaskParser):
    """webargs' Flask parser, decoding bodies with the app's JSON provider instead of the stdlib.

    One decoder for every path (webargs, `request.get_json`) means one set of rules for what
    counts as valid JSON; see core.json_provider.
    """

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return current_app.json.loads(data)
        except json.JSONDecodeError as exc:
            # webargs reads an empty `doc` as "no body at all"; orjson leaves it empty for bytes
            # that are not UTF-8, which must be reported as invalid JSON instead.
            raise json.JSONDecodeError(exc.msg, exc.doc or "<request body>", exc.pos) from exc


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint with AppJSONParser."""

    ARGUMENTS_PARSER = AppJSONParser()
