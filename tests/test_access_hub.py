"""A visitor's Hub download on a public app: theirs when it fits, Failed with the reason when it
is bigger than one download may be (against the fake Hub, offline)."""

from __future__ import annotations

import pytest

from imgai import jobs, registry
from imgai.hub import download
from tests.hub_fixtures import fake_hub, fake_hub_server, fake_hub_template  # noqa: F401 (fixtures)
from tests.test_access_ops import ALICE, BOB

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def public(fake_hub, monkeypatch):
    monkeypatch.setenv("IMGAI_PUBLIC", "1")
    monkeypatch.setenv("IMGAI_MIN_FREE_DISK", "0")
    return fake_hub


def test_a_visitors_download_is_theirs(public):
    job = jobs.wait(download("acme/resnet-tiny", actor=ALICE).id, timeout=120)
    assert job.state == jobs.SUCCEEDED, job.error
    assert job.owner == "alice"
    model = registry.get(job.result["model_id"])
    assert model.owner == "alice"
    assert [m.id for m in registry.list_models(actor=ALICE)] == [model.id]
    assert registry.list_models(actor=BOB) == []
    again = jobs.wait(download("acme/resnet-tiny", actor=BOB).id, timeout=120)     # bob gets his own row
    assert again.state == jobs.SUCCEEDED and registry.get(again.result["model_id"]).owner == "bob"


def test_a_download_bigger_than_one_may_be_fails_with_the_reason(public, monkeypatch):
    monkeypatch.setenv("IMGAI_QUOTA_DOWNLOAD", "1kb")
    job = jobs.wait(download("acme/resnet-tiny", actor=ALICE).id, timeout=120)
    assert job.state == jobs.FAILED
    assert "acme/resnet-tiny" in job.error and "the limit is 1.0 KB (size of one Hub download; set by " \
                                                "IMGAI_QUOTA_DOWNLOAD, default 1GB)" in job.error
    assert registry.list_models() == []
    shared = jobs.wait(download("acme/resnet-tiny").id, timeout=120)                 # the console has no such limit
    assert shared.state == jobs.SUCCEEDED and registry.get(shared.result["model_id"]).owner is None
