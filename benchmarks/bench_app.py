"""The service's own app plus one trivial endpoint, for the HTTP benchmark only.

`/bench/noop` answers `{"cards": []}` without reading the body: the floor of what an HTTP call
to this app costs under gunicorn.
"""

from flask import Response

from cds_service.app import create_app
from cds_service.outcome import json_response

app = create_app()


@app.post("/bench/noop")
def noop() -> Response:
    return json_response({"cards": []})
