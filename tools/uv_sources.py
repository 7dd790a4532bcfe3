"""Print the uv flags for the package sources pip is configured with (pip.conf and PIP_* variables).

`make venv` installs with uv, which unpacks and byte-compiles the wheels in parallel: the test venv
(6.9 GB) took 52 s with uv and 150-196 s with pip on a 2-core machine. uv does not read pip's
configuration, so without these flags a machine whose pip reads wheels from a local folder or mirror
would download them (several GB) instead. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
         "find-links": "--find-links", "constraint": "--constraint"}


def uv_flags(pip_config: str) -> list[str]:
    """`pip config list` output (`global.find-links='/opt/wheels'`, one setting a line) -> uv flags."""
    pairs: list[tuple[str, str]] = []
    for line in pip_config.splitlines():
        key, _, value = line.partition("=")
        flag = FLAGS.get(key.rsplit(".", 1)[-1])
        for item in shlex.split(value) if flag else []:
            for word in item.split():            # pip separates several URLs with spaces
                if (flag, word) not in pairs:    # a setting can come from a file and a variable both
                    pairs.append((flag, word))
    flags = [part for pair in pairs for part in pair]
    if "--extra-index-url" in flags:
        # uv takes a package from the first index that has it; a local mirror that holds an older
        # release of a package would then hide the pinned one on PyPI. pip compares them all.
        flags += ["--index-strategy", "unsafe-best-match"]
    return flags


if __name__ == "__main__":
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    print(shlex.join(uv_flags(config)))
