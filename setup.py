"""Which packages the wheel holds (pyproject.toml has the rest): every imgai package as found, plus
the top-level templates/ folder installed as imgai/templates/, so the card templates live in one
place (where a Space's owner edits them) and an installed imgai still has them."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["imgai", "imgai.*"]), "imgai.templates"],
      package_dir={"imgai.templates": "templates"})
