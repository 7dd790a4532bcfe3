"""Review, decisions, search and exports from the library index, through the CLI as a script would
use it: pending tags between the review floor and the threshold (per category, persisted), a
person's decisions winning over re-tags and flagged when the image changes, `cat -dog` search,
CSV with review state, kohya captions and XMP sidecars merged into another tool's sidecar."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.factories import random_image
from tests.library_fixtures import photo_folder, wd_default  # noqa: F401 (fixture)

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


@pytest.fixture
def tagged_folder(wd_default, tmp_path, cli):
    folder = tmp_path / "photos"
    photo_folder(folder, 6)
    code, _, err = cli("tag", folder)
    assert code == 0, err
    return folder


def _scores(cli, folder) -> dict:
    """path → {label: score} from the CSV export with every stored score."""
    code, out, _ = cli("library", "export", "csv", "--all", "--folder", folder)
    rows = list(csv.DictReader(io.StringIO(out)))
    table: dict = {}
    for r in rows:
        if r["score"]:
            table.setdefault(r["path"], {})[r["label"]] = float(r["score"])
    return table


def test_review_band_per_category_is_persisted_and_decisions_win(tagged_folder, cli):
    scores = _scores(cli, tagged_folder)
    # blue_eyes scores 0.45–0.55 on these images: put it in the general review band
    assert cli("library", "thresholds", "general", "--review", "0.4", "--accept", "0.6")[0] == 0
    shown = json.loads(cli("library", "thresholds", "--json")[1])
    assert shown["general"] == {"review": 0.4, "accept": 0.6} and shown["character"]["accept"] == 0.85
    pending = json.loads(cli("library", "review", "--json")[1])
    expected = {(p, label) for p, tags in scores.items() for label, s in tags.items()
                if 0.4 <= s < 0.6 and label not in ("general", "sensitive", "questionable", "explicit")}
    assert {(r["path"], r["label"]) for r in pending} == expected and expected
    assert all(r["category"] == "general" for r in pending)

    first, second = sorted(expected)[:2]
    code, out, _ = cli("library", "decide", first[0], first[1], "reject", second[0], second[1], "accept",
                       first[0], "kafuu_chino", "add", "--json")
    assert json.loads(out) == {"stored": 3, "reviewed": 3, "total": len(expected) + 1}   # +1: the added tag
    assert len(json.loads(cli("library", "review", "--json")[1])) == len(expected) - 2

    code, _, err = cli("tag", tagged_folder, "--force")               # re-tag: decisions untouched
    assert code == 0 and "6 forced" in err
    rows = list(csv.DictReader(io.StringIO(cli("library", "export", "csv", "--folder", tagged_folder)[1])))
    state = {(r["path"], r["label"]): r["state"] for r in rows}
    assert state[first] == "rejected by you" and state[second] == "accepted by you"
    assert state[(first[0], "kafuu_chino")] == "added by you"

    random_image(first[0], seed=999)                                    # the image changes afterwards
    cli("tag", tagged_folder)
    rows = list(csv.DictReader(io.StringIO(cli("library", "export", "csv", "--folder", tagged_folder)[1])))
    flagged = {(r["path"], r["label"]) for r in rows if r["changed"] == "1"}
    assert flagged == {first, (first[0], "kafuu_chino")}                 # kept, and flagged


def test_decisions_from_a_csv_file_and_accept_all_above_a_score(tagged_folder, cli, tmp_path):
    cli("library", "thresholds", "general", "--review", "0.4", "--accept", "0.95")
    pending = json.loads(cli("library", "review", "--label", "smile", "--json")[1])
    assert pending
    cut = sorted(p["score"] for p in pending)[len(pending) // 2]
    code, out, _ = cli("library", "decide", "--accept-all", "smile", "--min-score", cut)
    assert code == 0 and f"on {sum(p['score'] >= cut for p in pending)} image(s)" in out
    left = json.loads(cli("library", "review", "--label", "smile", "--json")[1])
    assert all(p["score"] < cut for p in left)

    sheet = tmp_path / "decisions.csv"
    sheet.write_text("path,label,action\n" + "".join(f"{p['path']},smile,reject\n" for p in left))
    assert cli("library", "decide", "--file", sheet)[0] == 0
    assert json.loads(cli("library", "review", "--label", "smile", "--json")[1]) == []
    code, _, err = cli("library", "decide", "/nowhere.jpg", "smile", "accept")
    assert code == 1 and "/nowhere.jpg is not in the library" in err
    code, _, err = cli("library", "decide", str(tagged_folder / "img0000.jpg"), "smile", "maybe")
    assert code == 1 and "'maybe'" in err and "accept, reject, add" in err


def test_search_with_exclusions_min_score_and_decisions(tagged_folder, cli):
    scores = _scores(cli, tagged_folder)
    hits = lambda *args: {h["path"] for h in json.loads(cli("library", "search", *args, "--json")[1])["hits"]}  # noqa: E731
    has = lambda label, floor: {p for p, t in scores.items() if t.get(label, 0) >= floor}  # noqa: E731
    assert hits("1girl") == has("1girl", 0.35)
    assert hits("1girl -blue_eyes") == has("1girl", 0.35) - has("blue_eyes", 0.35)
    assert hits('"blue eyes"', "--min-score", "0.5") == has("blue_eyes", 0.5)
    assert hits("hatsune_miku") == has("hatsune_miku", 0.85)
    some = sorted(has("1girl", 0.35))[0]
    cli("library", "decide", some, "1girl", "reject", some, "cat", "add")
    assert hits("1girl") == has("1girl", 0.35) - {some}
    assert hits("cat") == {some} and hits("hatsune_miku -cat") == has("hatsune_miku", 0.85) - {some}
    assert hits("1girl", "--model", "no-such-model") == set()
    code, _, err = cli("library", "search", '"unclosed')
    assert code == 1 and "close the quote" in err


def test_captions_and_xmp_sidecars_merged_into_another_tools_sidecar(tagged_folder, cli):
    image = tagged_folder / "img0001.jpg"
    other = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
             '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
             'xmlns:digiKam="http://www.digikam.org/ns/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
             'xmp:Rating="4"><digiKam:TagsList><rdf:Seq><rdf:li>Holiday/Beach</rdf:li></rdf:Seq></digiKam:TagsList>'
             '<dc:subject><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></dc:subject></rdf:Description>'
             '</rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>\n')
    image.with_suffix(".xmp").write_text(other)
    code, out, _ = cli("library", "export", "xmp")
    assert "wrote 5 .xmp" in out and "kept 1 existing" in out
    assert image.with_suffix(".xmp").read_text() == other              # untouched without --overwrite
    code, out, _ = cli("library", "export", "xmp", "--overwrite", "--underscores-to-spaces", "--json")
    assert code == 0 and json.loads(out)["written"] == 6                # merged into the existing one too

    root = ET.parse(image.with_suffix(".xmp")).getroot()
    subjects = [li.text for li in root.iter(f"{{http://purl.org/dc/elements/1.1/}}subject") for li in li.iter(f"{RDF}li")]
    assert subjects[0] == "holiday" and "1girl" in subjects and "long hair" in subjects and "general" not in subjects
    hierarchy = [li.text for e in root.iter("{http://ns.adobe.com/lightroom/1.0/}hierarchicalSubject")
                 for li in e.iter(f"{RDF}li")]
    assert "imgai|character|hatsune miku" in hierarchy
    description = root.find(f"{RDF}RDF/{RDF}Description")
    assert description.get("{http://ns.adobe.com/xap/1.0/}Rating") == "4"
    assert [li.text for li in root.iter(f"{RDF}li") if li.text == "Holiday/Beach"]

    if shutil.which("exiftool"):
        read = json.loads(subprocess.run(["exiftool", "-json", "-XMP:all", str(image.with_suffix(".xmp"))],
                                         capture_output=True, text=True, check=True).stdout)[0]
        assert read["Rating"] == 4 and "holiday" in read["Subject"] and "long hair" in read["Subject"]
        assert "imgai|character|hatsune miku" in read["HierarchicalSubject"]
        assert read["TagsList"] == "Holiday/Beach"

    cli("library", "decide", str(image), "1girl", "reject")
    cli("library", "export", "txt", "--overwrite", "--underscores-to-spaces", "--exclude-tags", "smile")
    caption = image.with_suffix(".txt").read_text().strip().split(", ")
    assert caption[0] == "hatsune miku" and "1girl" not in caption and "smile" not in caption and "long hair" in caption
    cli("library", "export", "txt", "--overwrite", "--reviewed-only")
    assert image.with_suffix(".txt").read_text() == "\n"               # nothing reviewed as kept on it
