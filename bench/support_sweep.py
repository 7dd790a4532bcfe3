"""Run imgai's support sweep and write imgai/classify/support_table.json (`make support-table`).

    python bench/support_sweep.py                 # every candidate (transformers + timm)
    python bench/support_sweep.py --only 'vit*'   # some: a name, key (timm:convnext_atto) or family pattern
    python bench/support_sweep.py --list          # the candidates, nothing run

Prints one line per candidate (family, library, pass/fail, seconds, reason) and the totals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from imgai.classify.architectures import SUPPORT_TABLE_PATH
    from imgai.classify.sweep import run_sweep, select

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="PATTERN", help="fnmatch pattern on name, library:name or family")
    parser.add_argument("--list", action="store_true", help="list the candidates and exit")
    parser.add_argument("--table", type=Path, default=SUPPORT_TABLE_PATH, help="the table to merge results into")
    args = parser.parse_args()
    candidates = select(args.only)
    if not candidates:
        parser.error(f"no candidate matches {args.only!r}; see --list")
    if args.list:
        for c in candidates:
            print(f"{c.library:12} {c.name:32} {c.family}")
        return 0

    def progress(i, n, o):
        print(f"[{i}/{n}] {o.family:20} {o.library:12} {o.name:30} {'PASS' if o.passed else 'FAIL'} "
              f"{o.seconds:6.1f}s {o.reason or ''}", flush=True)

    outcomes = run_sweep(candidates, table_path=args.table, progress=progress)
    for library in ("transformers", "timm"):
        mine = [o for o in outcomes if o.library == library]
        if mine:
            print(f"{library}: {sum(o.passed for o in mine)}/{len(mine)} passed")
    print(f"all: {sum(o.passed for o in outcomes)}/{len(outcomes)} passed; "
          f"families passing: {len({o.family for o in outcomes if o.passed})}; table: {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
