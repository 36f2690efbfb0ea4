"""The service's own app plus one trivial endpoint, for the HTTP benchmark only.

`/bench/parse` reads the body the way every endpoint does (`web.body.request_body`), parses it with
orjson and answers `{"cards": []}`: the floor of what a hook call to this app costs under gunicorn
(an endpoint that never reads the body lets gunicorn reset the connection and overstates the
floor's cost).
"""

import orjson
from flask import Response

from cds_service.app import create_app
from cds_service.web.body import request_body
from cds_service.web.responses import json_response

app = create_app()


@app.post("/bench/parse")
def parse() -> Response:
    orjson.loads(request_body())
    return json_response({"cards": []})
