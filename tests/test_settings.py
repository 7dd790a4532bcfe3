"""Every IMGAI_* variable is one Setting (imgai/settings.py): typed, with a default and a line of help;
a bad value is refused with its name; README's table is generated from them (tests/test_readme.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgai import settings
from imgai.errors import ConfigError
from imgai.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_the_code_reads_is_a_setting():
    sources = [*(ROOT / "imgai").rglob("*.py"), *(ROOT / "ui").rglob("*.py"), ROOT / "app.py"]
    named = {m for path in sources for m in re.findall(r"\bIMGAI_[A-Z_]*[A-Z]\b", path.read_text())}
    assert named - set(SETTINGS) == set(), "define these in imgai/settings.py"


@pytest.mark.parametrize("name", SETTINGS)
def test_each_setting_has_help_and_a_default_that_reads(name, monkeypatch):
    monkeypatch.delenv(name, raising=False)
    s = SETTINGS[name]
    assert s.help and s.kind in settings.KINDS
    settings.get(name)          # the default itself parses


@pytest.mark.parametrize("raw, on", [("1", True), ("true", True), ("YES", True), ("on", True),
                                     ("0", False), ("false", False), ("no", False), ("off", False), ("", False)])
def test_a_flag_reads_0_as_off(raw, on, monkeypatch):
    from imgai.demo import demo_disabled

    monkeypatch.setenv("IMGAI_NO_DEMO", raw)
    assert demo_disabled() is on             # IMGAI_NO_DEMO=0: the demo is on


@pytest.mark.parametrize("name, raw, message", [
    ("IMGAI_NO_DEMO", "maybe", "IMGAI_NO_DEMO='maybe' must be one of 1, true, yes, on (on) or 0, false, no, off"),
    ("IMGAI_MAX_JOBS", "0", "IMGAI_MAX_JOBS='0' must be a whole number of 1 or more (default 1)"),
    ("IMGAI_MAX_JOBS", "two", "IMGAI_MAX_JOBS='two' must be a whole number of 1 or more"),
    ("IMGAI_JOB_NICE", "20", "IMGAI_JOB_NICE='20' must be a whole number from 0 to 19 (default 10)"),
    ("IMGAI_MAX_UPLOAD", "lots", "IMGAI_MAX_UPLOAD='lots' is not a valid upload size limit; use e.g. 50MB"),
    ("IMGAI_FILES_TTL", "3h", "IMGAI_FILES_TTL='3h' must be a whole number of 0 or more (default 10800)"),
])
def test_a_bad_value_is_refused_with_its_name(name, raw, message, monkeypatch):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings.get(name)


def test_values_are_typed(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGAI_MAX_UPLOAD", "200kb")
    monkeypatch.setenv("IMGAI_MAX_ZIP_BYTES", "1.5 GiB")
    monkeypatch.setenv("IMGAI_ADMINS", " carol, Dave ,")
    monkeypatch.setenv("IMGAI_TEMPLATES", str(tmp_path))
    monkeypatch.setenv("IMGAI_MAX_JOBS", " 3 ")
    assert settings.get("IMGAI_MAX_UPLOAD") == 200_000 and settings.get("IMGAI_MAX_ZIP_BYTES") == 3 * 2**29
    assert settings.get("IMGAI_ADMINS") == ("carol", "Dave") and settings.get("IMGAI_TEMPLATES") == tmp_path
    assert settings.get("IMGAI_MAX_JOBS") == 3
    monkeypatch.setenv("IMGAI_MAX_JOBS", "  ")             # blank: the default
    assert settings.get("IMGAI_MAX_JOBS") == 1
    with pytest.raises(KeyError, match="no setting 'IMGAI_TYPO'"):
        settings.get("IMGAI_TYPO")


def test_the_limits_are_settings():
    from imgai.limits import LIMITS

    for lim in LIMITS.values():
        assert lim.setting is SETTINGS[lim.env] and lim.what and lim.default == SETTINGS[lim.env].default
