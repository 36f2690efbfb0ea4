"""web/body: one content-type check, one chunked-body reader and one JSON parser for every endpoint
that takes a body (hooks, feedback, the demo's markdown preview)."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder

from cds_service.app import create_app
from cds_service.web.body import check_content_type, parse_json_body, read_body
from cds_service.web.responses import CdsError

ENDPOINTS = [
    "/cds-services/vertebral-augmentation-referral",
    "/cds-services/vertebral-augmentation-referral/feedback",
    "/preview/markdown",
]


@pytest.mark.parametrize("mimetype", ["application/json", "application/fhir+json", "application/x+json", ""])
def test_json_content_types_pass(mimetype: str) -> None:
    check_content_type(mimetype)


@pytest.mark.parametrize("mimetype", ["text/plain", "application/xml", "multipart/form-data"])
def test_other_content_types_are_400(mimetype: str) -> None:
    with pytest.raises(CdsError) as refused:
        check_content_type(mimetype)
    assert refused.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"{", b"[" * 2000 + b"]" * 2000])
def test_empty_invalid_or_deep_json_is_400(raw: bytes) -> None:
    with pytest.raises(CdsError) as refused:
        parse_json_body(raw)
    assert refused.value.status == 400


def _chunked(stream: io.BytesIO) -> dict[str, object]:
    return {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream}


def test_a_chunked_body_is_read_whole_and_an_unchunked_one_left_to_flask() -> None:
    assert read_body(_chunked(io.BytesIO(b'{"a": 1}')), None, 100) == b'{"a": 1}'
    assert read_body({"wsgi.input": io.BytesIO(b"{}")}, 2, 100) is None


def test_a_chunked_body_over_the_limit_is_413_not_cut() -> None:
    with pytest.raises(CdsError) as refused:
        read_body(_chunked(io.BytesIO(b"x" * 200_000)), None, 100_000)
    assert refused.value.status == 413


def test_bad_chunk_framing_is_400() -> None:
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise ValueError("Invalid chunk size")

    with pytest.raises(CdsError) as refused:
        read_body(_chunked(Broken()), None, 100)  # type: ignore[arg-type]
    assert refused.value.status == 400


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_with_a_body_refuses_the_same_way(path: str) -> None:
    app: Flask = create_app(auth="off", demo=True)
    client = app.test_client()
    wrong_type = client.post(path, data=b"{}", content_type="text/plain")
    not_json = client.post(path, data=b"{", content_type="application/json")
    assert (wrong_type.status_code, not_json.status_code) == (400, 400)
    assert wrong_type.get_json()["issue"][0]["diagnostics"] == "Content-Type must be application/json"
    assert not_json.get_json()["issue"][0]["diagnostics"].startswith("request body is not valid JSON")


class _Trickle:
    """A wsgi.input that hands out at most 1,000 bytes per read, as a socket may."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.data.read(min(size, 1000) if size >= 0 else 1000)


def test_a_body_of_known_length_is_read_whole_whatever_each_read_returns() -> None:
    from cds_service.web.body import request_body

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    body = b'{"x": "' + b"y" * 50_000 + b'"}'
    environ = EnvironBuilder("/", method="POST", data=b"", content_type="application/json").get_environ()
    environ.update({"CONTENT_LENGTH": str(len(body)), "wsgi.input": _Trickle(body)})
    with app.request_context(environ):
        assert request_body() == body


def test_a_body_shorter_than_its_content_length_is_400() -> None:
    from cds_service.web.body import read_known_length

    with pytest.raises(CdsError) as refused:
        read_known_length(io.BytesIO(b'{"a": 1'), 100)
    assert refused.value.status == 400
