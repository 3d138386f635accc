"""TandemKV's build backend: setuptools', with an editable install that type
checkers can read and that sees new modules without a reinstall.

setup.cfg maps source folders onto the package (`tandemkv.server` is
server/, `tandemkv.client` is client/). setuptools' default editable install
serves such a layout through an import hook, which static checkers (mypy,
pyright) cannot follow: they read plain paths from `.pth` files. So
setup.cfg asks for setuptools' strict mode (`[editable_wheel] mode =
strict`): a tree under build/ laid out as the installed package, named by a
plain `.pth` path. Strict mode links file by file, so a module added later
would not import until the next install; here every package folder that is
its source folder one to one (server/, client/, proto/tandemkv/v1/, with
all their subpackages) becomes one link to that folder instead. Only a
module added directly in proto/tandemkv/ waits for `pip install -e .`.

Wheels and sdists are setuptools' own, unchanged.
"""

from __future__ import annotations

import configparser
import shutil
import zipfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (every other hook is setuptools')


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    tree = link_tree(Path(wheel_directory) / name)
    if tree is not None:
        link_whole_folders(tree, Path.cwd(), package_folders(Path.cwd() / "setup.cfg"))
    return name


def link_tree(wheel: Path) -> Path | None:
    """The link tree a strict editable wheel's `.pth` names (build/__editable__.*),
    or None (another mode)."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if "/" in member or not member.endswith(".pth"):
                continue
            lines = archive.read(member).decode().split()
            tree = Path(lines[0]) if len(lines) == 1 else None
            if tree is not None and tree.name.startswith("__editable__.") and tree.is_dir():
                return tree
    return None


def package_folders(setup_cfg: Path) -> dict[str, str]:
    """setup.cfg's package_dir: package name -> source folder."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    pairs = (line.split("=") for line in parser["options"]["package_dir"].splitlines() if "=" in line)
    return {name.strip(): folder.strip() for name, folder in pairs}


def whole_packages(folders: dict[str, str]) -> list[str]:
    """The outermost packages whose subpackages all sit in their own folder's
    subfolders, as installed: one folder link serves each of them whole."""
    def is_whole(package: str) -> bool:
        return all(folder == f"{folders[package]}/{name[len(package) + 1:].replace('.', '/')}"
                   for name, folder in folders.items() if name.startswith(package + "."))
    whole = [package for package in folders if is_whole(package)]
    return [package for package in whole
            if not any(package.startswith(outer + ".") for outer in whole)]


def link_whole_folders(tree: Path, root: Path, folders: dict[str, str]) -> None:
    for package in whole_packages(folders):
        installed = tree / package.replace(".", "/")
        if installed.is_symlink() or not installed.is_dir():
            continue
        link = installed.with_name(installed.name + ".link")
        try:
            link.symlink_to(root / folders[package], target_is_directory=True)
        except OSError:
            # No symlinks here (Windows without the privilege): the strict
            # tree stays file by file, and a new module needs a new install.
            return
        shutil.rmtree(installed)
        link.rename(installed)
