"""Saving a chapter's figures and tables, with a manifest, all or nothing.

A chapter creates one ``ChapterResults``, saves every figure and table through
it, and calls ``commit()`` in its last cell. Files are written to a staging
folder beside the results folder and move into ``<results_dir>/<chapter>/``
only on commit, so a chapter that fails part-way leaves the previous results
and manifest of that chapter as they were.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .locking import file_lock

__all__ = ["ChapterResults", "markdown_table", "git_commit"]

log = logging.getLogger(__name__)
FIGURE_FORMATS = ("png", "pdf")


def _glue_in_kernel(key: str, value: str) -> None:
    """Glue ``value`` under ``key`` for the book when running in a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return  # plain Python or a terminal IPython: there is no notebook to glue into
    from myst_nb import glue

    glue(key, value, display=False)


def git_commit(path: str | os.PathLike = ".") -> str | None:
    """Return the commit hash of the checkout holding ``path`` (with
    ``-dirty`` when it has uncommitted changes), or None outside git."""
    try:
        def run(*args):
            return subprocess.run(
                ["git", *args], cwd=path, capture_output=True, text=True, check=True
            ).stdout.strip()

        commit = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def _format_cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if np.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, index: bool = False) -> str:
    """Render ``frame`` as a GitHub-flavoured Markdown table."""
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_format_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ChapterResults:
    """Figures and tables of one chapter run, committed together.

    ``parameters`` are the chapter's parameter values as the run used them;
    they go into the manifest with ``seed``, the library version, the git
    commit and the list of files with their SHA-256.
    """

    def __init__(self, results_dir, chapter: str, parameters: dict, seed: int):
        if not chapter or "/" in chapter or chapter.startswith("."):
            raise ValueError(f"chapter must be a plain name, got {chapter!r}")
        self.results_dir = Path(results_dir).resolve()
        self.chapter = chapter
        self.parameters = dict(parameters)
        self.seed = seed
        self.files: list[str] = []
        self.captions: dict[str, str] = {}
        self.results_dir.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(
            tempfile.mkdtemp(prefix=f".staging-{chapter}-", dir=self.results_dir.parent)
        )
        self._committed = False
        atexit.register(self._discard)

    @property
    def chapter_dir(self) -> Path:
        """The folder that holds this chapter's committed results."""
        return self.results_dir / self.chapter

    def _discard(self) -> None:
        if not self._committed:
            shutil.rmtree(self._staging, ignore_errors=True)

    def _check_name(self, name: str) -> str:
        if self._committed:
            raise RuntimeError(f"results of {self.chapter} are already committed")
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"result name must be a plain file stem, got {name!r}")
        return name

    def save_figure(self, fig, name: str, caption: str = "") -> list[Path]:
        """Save ``fig`` as PNG and PDF; the figure stays open for display.

        Inside a Jupyter kernel the caption is also glued as
        ``<name>_caption``, which the figure cell's ``mystnb.figure.caption``
        metadata cites, so the book shows it under the numbered figure.
        """
        name = self._check_name(name)
        _glue_in_kernel(f"{name}_caption", caption)
        paths = []
        for fmt in FIGURE_FORMATS:
            path = self._staging / f"{name}.{fmt}"
            # Fixed metadata keeps the files byte-identical across builds.
            metadata = {"Software": None} if fmt == "png" else {"CreationDate": None}
            fig.savefig(path, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
            paths.append(path)
            self.files.append(path.name)
        self.captions[name] = caption
        return paths

    def save_table(self, frame: pd.DataFrame, name: str, caption: str = "",
                   index: bool = False) -> list[Path]:
        """Save ``frame`` as CSV, Markdown and LaTeX."""
        name = self._check_name(name)
        csv_path = self._staging / f"{name}.csv"
        frame.to_csv(csv_path, index=index, float_format="%.6g")
        md_path = self._staging / f"{name}.md"
        md_path.write_text(markdown_table(frame, index=index))
        tex_path = self._staging / f"{name}.tex"
        tex_path.write_text(frame.to_latex(index=index, float_format="%.4g", escape=True))
        paths = [csv_path, md_path, tex_path]
        self.files.extend(p.name for p in paths)
        self.captions[name] = caption
        return paths

    def manifest(self) -> dict:
        """Return the manifest that ``commit`` writes as ``manifest.json``."""
        import torch

        return {
            "chapter": self.chapter,
            "notebook": f"chapters/{self.chapter}.ipynb",
            "parameters": _json_ready(self.parameters),
            "seed": self.seed,
            "library_version": __version__,
            "git_commit": git_commit(Path(__file__).parent),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "files": {
                name: _sha256(self._staging / name) for name in sorted(self.files)
            },
            "captions": self.captions,
        }

    def commit(self) -> Path:
        """Move the staged files into ``<results_dir>/<chapter>/`` and return it."""
        if self._committed:
            raise RuntimeError(f"results of {self.chapter} are already committed")
        manifest = self.manifest()
        (self._staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        self.results_dir.mkdir(parents=True, exist_ok=True)
        target = self.chapter_dir
        # Two builds may commit the same chapter at once: the lock makes the
        # two renames of one commit a unit, so the folder always holds one
        # complete run, never a mix.
        with file_lock(self.results_dir.parent / f".{self.results_dir.name}.lock"):
            old = None
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".old-{self.chapter}-",
                                            dir=self.results_dir.parent))
                os.replace(target, old / "previous")
            os.replace(self._staging, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        self._committed = True
        log.info("results of %s committed to %s", self.chapter, target)
        return target
