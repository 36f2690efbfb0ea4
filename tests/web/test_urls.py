"""web/urls: the base URL behind the rationale link, the JWT audience and the preview's discovery
URL is built one way: CDS_PUBLIC_BASE_URL when set, else the request's scheme, host and root."""

from __future__ import annotations

from cds_service.app import create_app
from cds_service.web.urls import base_url


def test_the_request_host_when_no_public_base_url() -> None:
    app = create_app(auth="off")
    with app.test_request_context("/x", base_url="http://cds.local:8080/prefix/"):
        assert base_url(app.extensions["cds"].settings) == "http://cds.local:8080/prefix"


def test_the_public_base_url_without_its_trailing_slash() -> None:
    app = create_app(auth="off", public_base_url="https://cds.example.org/spine/")
    with app.test_request_context("/x", base_url="http://10.0.0.5:8080/"):
        assert base_url(app.extensions["cds"].settings) == "https://cds.example.org/spine"


def test_cards_and_the_preview_link_with_the_same_base() -> None:
    call_base = "https://cds.example.org"
    app = create_app(auth="off", demo=True, public_base_url=call_base + "/")
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    assert f"{call_base}/cds-services" in page
    request = client.get("/preview/requests/01-osteoporotic-l1-mri").get_json()
    answer = client.post("/cds-services/vertebral-augmentation-referral", json=request).get_json()
    assert answer["cards"][0]["source"]["url"] == f"{call_base}/rationale"
