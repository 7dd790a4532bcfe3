"""The app as a person (or a program) uses it: the real server, driven through gradio_client."""

import json
import urllib.error
import urllib.request

import pytest
from gradio_client import handle_file

from tests.factories import random_image
from tests.waiting import wait_until


def _wait_converted(client, model_id, timeout=240):
    def settled():
        rows = client.predict(None, [], api_name="/convert_refresh")[0]["data"]
        row = next(r for r in rows if r[0] == model_id)
        return row if row[3] in ("Converted", "Failed") else None

    return wait_until(settled, timeout, f"{model_id} to finish converting", every=1)


def test_add_convert_tag_through_the_api(app_server, tiny_model_cache, tmp_path, photos):
    client = app_server.client()
    rows = client.predict(None, [], api_name="/convert_refresh")[0]["data"]
    assert [r[:4] for r in rows] == [["efficientnet-lite0-demo", "EfficientNet-Lite0 ImageNet (demo)", "PyTorch",
                                      "NotConverted"]]

    message = client.predict(str(tiny_model_cache("timm-resnet")), "tiny resnet", api_name="/add_model")
    assert "Added **tiny-resnet** as PyTorch / NotConverted" in message

    assert "queued as job" in client.predict("efficientnet-lite0-demo", api_name="/convert")
    row = _wait_converted(client, "efficientnet-lite0-demo")
    assert row[2:6] == ["ONNX", "Converted", "yes", "★"] and row[6].startswith("passed")

    summary, gallery, table, files = client.predict(
        [handle_file(str(photos["coffee"])), handle_file(str(photos["chelsea"]))], "", "efficientnet-lite0-demo",
        3, 0.0, api_name="/tag")
    assert "Tagged 2 of 2 images" in summary
    assert table["data"][0][1].startswith("espresso")
    assert "cat" in table["data"][1][1]
    payload = json.loads(open(next(f for f in files if f.endswith(".json"))).read())
    assert payload[0]["tags"][0]["label"] == "espresso"


def test_errors_reach_the_user_as_messages(app_server):
    from gradio_client.exceptions import AppError

    client = app_server.client()
    with pytest.raises(AppError, match="cannot make 'efficientnet-lite0-demo' the default"):
        client.predict("efficientnet-lite0-demo", api_name="/set_default")
    with pytest.raises(AppError, match="neither an existing folder nor a Hub id"):
        client.predict("not a model", "", api_name="/add_model")
    with pytest.raises(AppError, match="no images"):
        client.predict([], "", "efficientnet-lite0-demo", 5, 0.0, api_name="/tag")


def test_folder_tagging_with_a_bad_file(app_server, tmp_path):
    client = app_server.client()
    client.predict("efficientnet-lite0-demo", api_name="/convert")
    _wait_converted(client, "efficientnet-lite0-demo")
    folder = tmp_path / "shots"
    folder.mkdir()
    random_image(folder / "a.png")
    (folder / "broken.jpg").write_bytes(b"nope")
    summary, _, table, _ = client.predict([], str(folder), "efficientnet-lite0-demo", 2, 0.0, api_name="/tag")
    assert "Tagged 1 of 2 images" in summary and "1 could not be read" in summary
    assert any("not an image" in row[1] for row in table["data"])


def test_file_route_refuses_outside_urls(app_server):
    """gradio 6.17.3 redirects /gradio_api/file=<url> anywhere (issue #13608); we refuse it."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            raise AssertionError("the server redirected")

    opener = urllib.request.build_opener(NoRedirect)
    for target in ("https://example.com/x", "http:%2F%2Fexample.com", "HTTPS://example.com", "//example.com/x",
                   "%68ttps://example.com"):
        for prefix in ("gradio_api/file=", "file="):
            with pytest.raises(urllib.error.HTTPError) as info:
                opener.open(app_server.url + prefix + target, timeout=10)
            assert info.value.code == 403, (prefix, target)
    with urllib.request.urlopen(app_server.url, timeout=10) as page:   # the app itself still answers
        assert page.status == 200
