"""The photo library: what imgai knows about a folder of images it has tagged.

    index.py      the SQLite index (WAL) in the data folder: images, models, scores, decisions, runs
    plan.py       what a run has to do: unchanged / new / changed / moved / missing files
    run.py        incremental tagging into the index (one transaction per batch; resumable)
    writer.py     the writer thread that lands each batch of a run (only the scores that differ)
    review.py     accepted / to review / below, thresholds per category, a person's decisions
    search.py     the query language ("cat -dog") over the index (each tag's ids met as sorted arrays)
    export.py     CSV / JSON with scores and review state, .txt captions, merged XMP sidecars
    training.py   data pipelines from the library or from a folder of .txt captions
    repair.py     rebuilding a damaged index, keeping the decisions

Tagging writes into it; nothing below it knows it exists. Who may use it: the local user and a
Space's owner and admins (`library` in imgai/access.py); visitors keep upload tagging.
"""
