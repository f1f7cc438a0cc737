"""Build hook: copy the rule packs, the example config, the systemd unit and the Postfix snippets
from the repository into the wheel as mailwarden/data/ (the list is packaged.SOURCES). Everything
else about the package is in pyproject.toml."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _sources() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("_packaged", HERE / "milter/mailwarden/packaged.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SOURCES)


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the repository
        data = Path(self.build_lib) / "mailwarden" / "data"
        for name, source in _sources().items():
            src, dst = HERE / source, data / name
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".gitkeep"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildWithData})
