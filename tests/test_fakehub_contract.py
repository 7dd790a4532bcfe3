"""The fake Hub speaks the Hub's protocol: each JSON answer of its endpoints goes through
huggingface_hub's own parsing (ModelInfo, RepoSibling, RepoFile, BlobLfsInfo, SafeTensorsInfo,
RepoUrl, CommitInfo, the whoami dict) and fills every field the real Hub fills for such a repo.
A field the fake forgot fails here, naming it, not as a puzzling None deep inside imgai."""

from __future__ import annotations

import dataclasses
import re

from tests.hub_fixtures import ALICE_TOKEN, fake_hub, fake_hub_server, fake_hub_template  # noqa: F401

REPO = "acme/resnet-tiny"

# What the real Hub sends for a public model repo with a card, a config and safetensors weights
# (GET /api/models/{id}?blobs=true); the rest of ModelInfo comes only on `expand` or for some repos
# (gguf, inference, inference_provider_mapping, mask_token, widget_data, model_index,
# transformers_info, downloads_all_time, security_repo_status, xet_enabled).
MODEL_INFO = {"id", "author", "sha", "created_at", "last_modified", "private", "disabled", "downloads", "gated",
              "likes", "library_name", "tags", "pipeline_tag", "card_data", "config", "siblings", "spaces",
              "safetensors", "trending_score"}
# GET /api/models without expand
LISTED = {"id", "likes", "downloads", "tags", "pipeline_tag", "library_name", "created_at", "private",
          "trending_score"}
WHOAMI = {"type", "id", "name", "fullname", "email", "emailVerified", "isPro", "avatarUrl", "orgs", "auth"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _missing(obj, expected: set[str]) -> list[str]:
    fields = {f.name for f in dataclasses.fields(obj)}
    assert expected <= fields, f"{sorted(expected - fields)} are not {type(obj).__name__} fields"
    return sorted(name for name in expected if getattr(obj, name) is None)


def _filled(obj) -> list[str]:
    """The fields of a small dataclass (a file entry) left None."""
    return [f.name for f in dataclasses.fields(obj) if getattr(obj, f.name) is None]


def test_every_read_endpoint_parses_into_the_librarys_dataclasses_with_no_missing_field(fake_hub):
    from huggingface_hub import HfApi

    from imgai.hub.search import EXPAND

    api = HfApi(endpoint=fake_hub.url, token=ALICE_TOKEN)
    info = api.model_info(REPO, files_metadata=True)
    assert _missing(info, MODEL_INFO) == [], "model_info"
    assert info.safetensors.parameters and info.safetensors.total
    for sibling in info.siblings:                       # with files_metadata: size and blob id, LFS info
        assert sibling.size is not None and sibling.blob_id, sibling
        if sibling.rfilename.endswith(".safetensors"):
            assert sibling.lfs is not None and sibling.lfs.sha256 and sibling.lfs.pointer_size, sibling

    listed = list(api.list_models(author="acme", limit=100))
    assert listed and all(_missing(m, LISTED) == [] for m in listed), [(m.id, _missing(m, LISTED)) for m in listed
                                                                      if _missing(m, LISTED)]
    expanded = list(api.list_models(author="acme", limit=100, expand=EXPAND))   # what imgai's search asks for
    wanted = {_snake(key) for key in EXPAND} | {"id"}
    wanted -= {"safetensors"}          # None where no header could be read (the real Hub too): checked above
    assert all(_missing(m, wanted - {"gated"}) == [] for m in expanded), \
        [(m.id, _missing(m, wanted - {"gated"})) for m in expanded if _missing(m, wanted - {"gated"})]
    assert all(m.gated is not None for m in expanded)

    tree = list(api.list_repo_tree(REPO, recursive=True))
    assert {f.path for f in tree} == {s.rfilename for s in info.siblings}
    for entry in tree + api.get_paths_info(REPO, ["config.json", "model.safetensors"]):
        # last_commit and security come only with expand=True; lfs only for LFS files
        left = set(_filled(entry)) - {"last_commit", "security"} - ({"lfs"} if not entry.path.endswith(
            (".safetensors", ".bin", ".h5")) else set())
        assert not left, (entry.path, left)

    me = api.whoami()
    assert WHOAMI <= set(me) and me["auth"]["accessToken"]["role"] and me["orgs"][0]["name"] == "acme"


def test_the_write_endpoints_answer_what_the_library_parses(fake_hub, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=fake_hub.url, token=ALICE_TOKEN)
    url = api.create_repo("acme/contract-check")
    assert url.repo_id == "acme/contract-check" and url.endpoint == fake_hub.url and url.repo_type == "model"
    (tmp_path / "weights.safetensors").write_bytes(b"\0" * 2048)
    commit = api.upload_folder(repo_id="acme/contract-check", folder_path=tmp_path, commit_message="contract")
    assert _filled(commit) == ["pr_url", "pr_revision", "pr_num"] or set(_filled(commit)) <= {
        "pr_url", "pr_revision", "pr_num", "_url"}, _filled(commit)
    assert commit.oid and commit.commit_url.endswith(commit.oid) and commit.commit_message == "contract"
    assert api.model_info("acme/contract-check").sha == commit.oid
