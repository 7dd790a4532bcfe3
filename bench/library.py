"""The photo library's costs, side by side in one run, against the targets of issue 22:

1. tagging a folder into the library vs tagging it without (the same files, the same model, the
   same engine; rounds alternate, median of each): target ≥ 0.97×. Into the library twice: into a
   fresh index (every file new: every score inserted) and again with --force (the same bytes:
   only what differs is written). Each row also gives the CPU time per image of the whole process
   (all threads), which a shared machine disturbs less than the wall clock;
2. a second run over 10,000 unchanged tiny images (plan + nothing to tag): target ≤ 3 s;
3. a search ("tag_a -tag_b", and two tags with --min-score) over an index of 100,000 images with
   50 scores each (synthetic rows written in the library's own schema): target ≤ 100 ms;
4. that index's size on disk: target ≤ 200 MB.

Two WD-style taggers built in code (50 tags, NHWC input, Sigmoid): a single MatMul on 64×64
(tests/onnx_factories.py), so decoding and the library's own work weigh as much as they ever will
next to it (the worst case), and timm's MobileNetV3-Large at 224×224 (random init, its real size),
about the lightest network a person tags a library with.

    .venv/bin/python bench/library.py [--quick]

Prints the table; the last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TAGS = 50


def _linear_onnx(path: Path) -> None:
    """64×64 NHWC → one MatMul → Sigmoid: next to it, decoding and the library's work are all there is."""
    import numpy as np
    import onnx

    from tests.onnx_factories import linear_graph

    bias = np.random.default_rng(1).normal(-1.0, 1.5, TAGS)      # a spread of scores, some over the thresholds
    onnx.save(linear_graph(shape=["batch", 64, 64, 3], n_out=TAGS, input_name="input_1:0",
                           output_name="predictions_sigmoid", activation="sigmoid", bias=bias), str(path))


def _mobilenet_onnx(path: Path) -> None:
    """timm's MobileNetV3-Large (random init, its real size) behind a WD tagger's interface (224×224
    NHWC, Sigmoid): about the lightest network a person would tag a library with."""
    import timm
    import torch

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = timm.create_model("mobilenetv3_large_100", pretrained=False, num_classes=TAGS)

        def forward(self, x):
            return torch.sigmoid(self.net(x.permute(0, 3, 1, 2) / 127.5 - 1.0))

    torch.manual_seed(0)
    torch.onnx.export(Tagger().eval(), (torch.zeros(1, 224, 224, 3),), str(path), input_names=["input_1:0"],
                      output_names=["predictions_sigmoid"], dynamic_axes={"input_1:0": {0: "batch"}},
                      opset_version=17, dynamo=False)


MODELS = {"linear": _linear_onnx, "mobilenetv3": _mobilenet_onnx}


def make_model(root: Path, kind: str = "linear") -> str:
    from imgai import registry
    from imgai.sources import add_model
    from tests.onnx_factories import write_selected_tags

    folder = root / f"wd-bench-{kind}"
    folder.mkdir(parents=True)
    tags = [(f"tag_{i}", 9 if i < 4 else (4 if i % 10 == 0 else 0)) for i in range(TAGS)]
    MODELS[kind](folder / "model.onnx")
    write_selected_tags(folder / "selected_tags.csv", tags)
    model = add_model(str(folder))
    registry.set_enabled(model.id, True)
    registry.set_default(model.id)
    return model.id


def make_images(folder: Path, n: int, size: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i:05d}.{'jpg' if size[0] > 16 else 'png'}")


def throughput(folder: Path, rounds: int) -> tuple[dict, dict, dict, int]:
    """{img_s, cpu_ms} (medians) without the library, into a fresh index, and again with --force;
    rounds alternate."""
    from imgai.classify.tag import TagOptions, collect_images, stream_here
    from imgai.library.index import index_path
    from imgai.library.run import tag_into_library

    options = TagOptions()
    n = len(collect_images([folder]))

    def plain_run():
        for _ in stream_here([folder], options=options):
            pass

    def fresh_run():
        for suffix in ("", "-wal", "-shm"):
            Path(str(index_path()) + suffix).unlink(missing_ok=True)
        tag_into_library([folder], options=options)

    runs = {"plain": plain_run, "fresh": fresh_run,
            "force": lambda: tag_into_library([folder], options=options, force=True)}
    times = {name: ([], []) for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start, cpu = time.perf_counter(), time.process_time()
            run()
            times[name][0].append(n / (time.perf_counter() - start))
            times[name][1].append((time.process_time() - cpu) / n * 1000)
    out = {name: {"img_s": statistics.median(w), "cpu_ms": statistics.median(c)} for name, (w, c) in times.items()}
    return out["plain"], out["fresh"], out["force"], n


def second_run(folder: Path) -> tuple[float, float, str]:
    from imgai.library.run import tag_into_library

    start = time.perf_counter()
    tag_into_library([folder])
    first = time.perf_counter() - start
    start = time.perf_counter()
    report = tag_into_library([folder])
    return first, time.perf_counter() - start, report.summary


def synthetic_index(images: int, per_image: int, vocabulary: int = 2000) -> None:
    """`images` rows with `per_image` scores each, in the library's schema (as write_batch lays them out)."""
    from imgai.library.index import OK, connect, to_score, transaction

    rng = random.Random(0)
    conn = connect()
    with transaction(conn):
        conn.execute("INSERT INTO models(fingerprint, model_id, at) VALUES ('synthetic', 'synthetic', 0)")
        conn.executemany("INSERT INTO tags(id, fingerprint, label, category) VALUES (?, 'synthetic', ?, 'general')",
                         [(i + 1, f"tag_{i}") for i in range(vocabulary)])
    weights = [1.0 / (i + 1) for i in range(vocabulary)]          # a few tags common, most rare (Zipf-like)
    chunk = 5000
    for base in range(0, images, chunk):
        with transaction(conn):
            conn.executemany("INSERT INTO images(id, path, size, mtime_ns, hash, status, seen_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
                             [(i + 1, f"/photos/{i // 1000:03d}/img{i:06d}.jpg", 100_000 + i, 1_700_000_000_000_000_000 + i,
                               f"{rng.getrandbits(128):032x}", OK) for i in range(base, min(images, base + chunk))])
            rows = []
            for i in range(base, min(images, base + chunk)):
                for tag in set(rng.choices(range(vocabulary), weights, k=per_image)):
                    rows.append((i + 1, tag + 1, to_score(rng.uniform(0.02, 1.0))))
            conn.executemany("INSERT OR IGNORE INTO scores(image_id, tag_id, score) VALUES (?, ?, ?)", rows)
            conn.executemany("INSERT INTO tagged(image_id, fingerprint, hash, at) VALUES (?, 'synthetic', '', 0)",
                             [(i + 1,) for i in range(base, min(images, base + chunk))])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def search_ms(queries: list[tuple[str, float | None]], repeats: int) -> dict[str, float]:
    from imgai.library.search import search

    out = {}
    for text, min_score in queries:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = search(text, min_score=min_score)
            times.append((time.perf_counter() - start) * 1000)
        out[f"{text!r}" + (f" ≥{min_score}" if min_score else "") + f" ({result.total:,} hits)"] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller folders (a smoke run, not the figures)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="imgai-bench-library-"))
    os.environ["IMGAI_HOME"] = str(root / "home")
    os.environ["IMGAI_NO_DEMO"] = "1"
    try:
        make_model(root)
        n_tp, n_unchanged, n_index = (60, 1000, 10_000) if args.quick else (400, 10_000, 100_000)
        make_images(root / "photos", n_tp, (320, 240))
        plain, fresh, library, n = throughput(root / "photos", rounds=3 if args.quick else 5)
        make_model(root, "mobilenetv3")                         # now the default model
        make_images(root / "photos-real", 24 if args.quick else 160, (320, 240))
        real_plain, real_fresh, real_library, n_real = throughput(root / "photos-real", rounds=3)
        make_images(root / "tiny", n_unchanged, (8, 8))
        first, second, summary = second_run(root / "tiny")

        os.environ["IMGAI_HOME"] = str(root / "synthetic")
        start = time.perf_counter()
        synthetic_index(n_index, 50)
        built = time.perf_counter() - start
        index = root / "synthetic" / "library.sqlite"
        size_mb = index.stat().st_size / 1e6
        searches = search_ms([("tag_3 -tag_1", None), ("tag_10 tag_20", 0.5), ("tag_700 -tag_0", None)],
                             repeats=5 if args.quick else 15)

        ratio = lambda run: run["img_s"] / plain["img_s"]                   # noqa: E731
        ratio_real = lambda run: run["img_s"] / real_plain["img_s"]         # noqa: E731
        cpu = lambda run: f"{run['cpu_ms']:.2f} ms CPU/img"                  # noqa: E731
        rows = [("tagging throughput, without library", f"{plain['img_s']:,.1f} img/s", "", f"{n} JPEGs 320×240; {cpu(plain)}"),
                ("tagging throughput, into a fresh library", f"{fresh['img_s']:,.1f} img/s", "", f"all new; {cpu(fresh)}"),
                ("  ratio with / without", f"{ratio(fresh):.3f}×", "≥ 0.97×", "ok" if ratio(fresh) >= 0.97 else "MISSED"),
                ("tagging throughput, into the library again", f"{library['img_s']:,.1f} img/s", "",
                 f"--force; {cpu(library)}"),
                ("  ratio with / without", f"{ratio(library):.3f}×", "≥ 0.97×", "ok" if ratio(library) >= 0.97 else "MISSED"),
                ("  CPU per image, without / with (fresh, --force)",
                 f"{plain['cpu_ms'] / fresh['cpu_ms']:.3f}×, {plain['cpu_ms'] / library['cpu_ms']:.3f}×", "", ""),
                ("MobileNetV3-Large tagger, without library", f"{real_plain['img_s']:,.1f} img/s", "",
                 f"{n_real} JPEGs 320×240; {cpu(real_plain)}"),
                ("  into a fresh library", f"{real_fresh['img_s']:,.1f} img/s", "", cpu(real_fresh)),
                ("  ratio with / without", f"{ratio_real(real_fresh):.3f}×", "≥ 0.97×",
                 "ok" if ratio_real(real_fresh) >= 0.97 else "MISSED"),
                ("  into the library again", f"{real_library['img_s']:,.1f} img/s", "", f"--force; {cpu(real_library)}"),
                ("  ratio with / without", f"{ratio_real(real_library):.3f}×", "≥ 0.97×",
                 "ok" if ratio_real(real_library) >= 0.97 else "MISSED"),
                ("  CPU per image, without / with (fresh, --force)",
                 f"{real_plain['cpu_ms'] / real_fresh['cpu_ms']:.3f}×, "
                 f"{real_plain['cpu_ms'] / real_library['cpu_ms']:.3f}×", "", ""),
                (f"first run, {n_unchanged:,} tiny images", f"{first:.2f} s", "", ""),
                (f"second run, {n_unchanged:,} unchanged", f"{second:.2f} s", "≤ 3 s", "ok" if second <= 3 else "MISSED"),
                ("  its summary", summary, "", "")]
        for query, ms in searches.items():
            rows.append((f"search {query}", f"{ms:.1f} ms", "≤ 100 ms", "ok" if ms <= 100 else "MISSED"))
        rows += [(f"index of {n_index:,} images × 50 scores", f"{size_mb:.1f} MB", "≤ 200 MB",
                  "ok" if size_mb <= 200 else "MISSED"),
                 ("  (built in)", f"{built:.1f} s", "", "synthetic rows, the library's schema")]
        width = [max(len(str(r[i])) for r in rows) for i in range(4)]
        print(f"machine: {os.cpu_count()} CPUs; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} "
              "at the end (a shared machine inflates times)")
        for r in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, width)).rstrip())
        worst_search = max(searches.values())
        print(f"ratio={ratio(library):.3f} ratio_fresh={ratio(fresh):.3f} ratio_mobilenet={ratio_real(real_library):.3f} "
              f"ratio_mobilenet_fresh={ratio_real(real_fresh):.3f} second_run_s={second:.2f} "
              f"search_ms={worst_search:.1f} index_mb={size_mb:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
