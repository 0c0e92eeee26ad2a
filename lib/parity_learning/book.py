"""Build the book: execute every chapter with papermill, then run jupyter-book.

``python -m parity_learning.book build --profile quick`` (what ``make book``
runs) does, from the repository root:

1. reads the profile ``profiles/<name>.toml``: the values papermill injects
   into each chapter's ``parameters`` cell, checked against that cell;
2. copies the book sources (``_config.yml``, ``_toc.yml``, ``chapters/``) to
   ``_build/book/`` and executes each chapter of ``_toc.yml`` into it, in
   ``chapters/`` as working directory, as JupyterLab would run it; figures and
   tables go to ``_build/results/<profile>/<chapter>/``;
3. builds the HTML from the executed copies with jupyter-book 1.x in strict
   mode and moves it to ``_build/html``.

A failing cell stops the build with the chapter, the cell and the error; the
executed notebook is kept for inspection.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .locking import file_lock

__all__ = ["Profile", "load_profile", "toc_chapters", "build", "main", "BuildError"]

log = logging.getLogger("parity_learning.book")

#: Parameters the builder injects into every chapter; each chapter declares them.
BUILDER_PARAMETERS = ("profile", "results_dir")
PROFILE_KEYS = {"description", "seed", "cell_timeout", "chapters"}


class BuildError(RuntimeError):
    """A chapter failed or the book did not build."""


def repository_root() -> Path:
    """Return the folder holding ``_toc.yml``: the working directory or above."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(f"no _toc.yml in {here} or any parent: run from the repository")


def toc_files(toc_path: Path) -> list[str]:
    """Return every ``root`` and ``file`` entry of a ``_toc.yml``, in book order."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            if "root" in node:
                files.append(node["root"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return files


def toc_chapters(root: Path) -> list[str]:
    """Return the notebook chapters of ``_toc.yml`` in book order, as stems."""
    chapters = []
    for name in toc_files(root / "_toc.yml"):
        path = root / name
        if path.with_suffix(".ipynb").is_file():
            chapters.append(Path(name).with_suffix("").name)
    return chapters


def notebook_parameters(path: Path) -> dict[str, dict]:
    """Return the names and inferred defaults of a notebook's ``parameters`` cell."""
    import papermill

    parameters = papermill.inspect_notebook(str(path))
    if not parameters:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    return parameters


@dataclass
class Profile:
    """A parameter profile: injected values per chapter and build settings."""

    name: str
    seed: int
    cell_timeout: int
    chapters: dict[str, dict] = field(default_factory=dict)
    description: str = ""


def _check_value_type(chapter, name, value, declared, profile_path):
    """Reject a profile value whose type differs from the chapter's default."""
    try:
        default = ast.literal_eval(declared.get("default", "None"))
    except (ValueError, SyntaxError):
        return  # a default computed by code: nothing to compare with
    if default is None:
        return
    expected = (int, float) if type(default) is float else (type(default),)
    same_kind = isinstance(value, expected) and (
        isinstance(value, bool) == isinstance(default, bool)
    )
    if not same_kind:
        raise TypeError(
            f"profile {profile_path}: chapters.{chapter}.{name} = {value!r} is "
            f"{type(value).__name__}, the chapter's default {default!r} is "
            f"{type(default).__name__}"
        )


def load_profile(path_or_name: str | os.PathLike, root: Path | None = None) -> Profile:
    """Read and validate a profile, by name (``quick``, ``full``) or path.

    Unknown keys, unknown chapters, parameters the chapter does not declare in
    its ``parameters`` cell, and values of another type than the chapter's
    default are rejected with the profile path and the field.
    """
    root = root or repository_root()
    path = Path(path_or_name)
    if path.suffix != ".toml":
        path = root / "profiles" / f"{path_or_name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "profiles").glob("*.toml"))
        raise FileNotFoundError(f"profile {path_or_name!r} not found at {path}; known: {known}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"profile {path} is not valid TOML: {error}") from error

    unknown = set(data) - PROFILE_KEYS
    if unknown:
        raise ValueError(f"profile {path}: unknown keys {sorted(unknown)}; valid: {sorted(PROFILE_KEYS)}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"profile {path}: seed must be a non-negative integer, got {seed!r}")
    timeout = data.get("cell_timeout", 1800)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"profile {path}: cell_timeout must be a positive integer (seconds), got {timeout!r}")

    chapters = toc_chapters(root)
    sections = data.get("chapters", {})
    if not isinstance(sections, dict):
        raise ValueError(f"profile {path}: 'chapters' must be a table of chapter tables")
    for chapter, values in sections.items():
        if chapter not in chapters:
            raise ValueError(f"profile {path}: unknown chapter {chapter!r}; chapters: {chapters}")
        if not isinstance(values, dict):
            raise ValueError(f"profile {path}: chapters.{chapter} must be a table")
        declared = notebook_parameters(root / "chapters" / f"{chapter}.ipynb")
        for name, value in values.items():
            if name in BUILDER_PARAMETERS or name == "seed":
                raise ValueError(
                    f"profile {path}: chapters.{chapter}.{name} is set by the builder; "
                    "set seed at the top level of the profile"
                )
            if name not in declared:
                raise ValueError(
                    f"profile {path}: chapters.{chapter}.{name} is not a parameter of "
                    f"{chapter}; its parameters: {sorted(declared)}"
                )
            _check_value_type(chapter, name, value, declared[name], path)
    return Profile(
        name=path.stem,
        seed=seed,
        cell_timeout=timeout,
        chapters={c: dict(sections.get(c, {})) for c in chapters},
        description=data.get("description", ""),
    )


def _copy_sources(root: Path, source: Path) -> None:
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        if (root / name).is_file():
            shutil.copy2(root / name, source / name)
    ignore = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__")
    shutil.copytree(root / "chapters", source / "chapters", ignore=ignore)
    # Vendored static files (MathJax), served from the built site.
    if (root / "vendor").is_dir():
        shutil.copytree(root / "vendor", source / "vendor")


def execute_chapter(root: Path, chapter: str, output: Path, parameters: dict, timeout: int):
    """Execute one chapter with papermill into ``output``; raise BuildError on failure."""
    import papermill

    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(root / "chapters" / f"{chapter}.ipynb"),
            str(output),
            parameters=parameters,
            cwd=str(root / "chapters"),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
        )
    except papermill.PapermillExecutionError as error:
        raise BuildError(
            f"chapter {chapter} failed in cell {error.cell_index} (execution count "
            f"{error.exec_count}): {error.ename}: {error.evalue}\n"
            f"The executed notebook is kept at {output}"
        ) from error
    log.info("executed %s in %.0f s", chapter, time.perf_counter() - started)


def build(profile_name: str = "quick", *, chapters: list[str] | None = None,
          html: bool = True, root: Path | None = None) -> Path:
    """Execute the chapters of ``profile_name`` and build the HTML book.

    Returns the HTML folder, or the executed-source folder with ``html=False``.
    """
    root = root or repository_root()
    profile = load_profile(profile_name, root)
    build_dir = root / "_build"
    source = build_dir / "book"
    results_dir = build_dir / "results" / profile.name
    selected = chapters or list(profile.chapters)
    unknown = [c for c in selected if c not in profile.chapters]
    if unknown:
        raise ValueError(f"unknown chapters {unknown}; chapters: {list(profile.chapters)}")

    # Two builds in one checkout would overwrite each other's executed
    # notebooks: the second waits for the first.
    with file_lock(build_dir / ".build.lock"):
        return _build_locked(root, profile, selected, source, results_dir, html)


def _build_locked(root, profile, selected, source, results_dir, html):
    build_dir = source.parent
    # Figures must reach the notebooks: the inline backend, never Agg.
    os.environ.pop("MPLBACKEND", None)
    _copy_sources(root, source)
    for chapter in selected:
        parameters = dict(profile.chapters[chapter])
        parameters.update(seed=profile.seed, profile=profile.name, results_dir=str(results_dir))
        log.info("executing %s (profile %s)", chapter, profile.name)
        execute_chapter(root, chapter, source / "chapters" / f"{chapter}.ipynb",
                        parameters, profile.cell_timeout)
    if not html:
        return source

    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(source),
               "-W", "-n", "--keep-going"]
    log.info("building HTML: %s", " ".join(command))
    completed = subprocess.run(command, cwd=root)
    if completed.returncode != 0:
        raise BuildError(f"jupyter-book build failed with exit code {completed.returncode}")
    html_dir = build_dir / "html"
    if html_dir.exists():
        shutil.rmtree(html_dir)
    shutil.move(str(source / "_build" / "html"), str(html_dir))
    log.info("book built: %s", html_dir / "index.html")
    return html_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity_learning.book", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="execute the chapters and build the HTML book")
    build_parser.add_argument("--profile", default="quick",
                              help="profile name in profiles/ or path of a .toml file (default: quick)")
    build_parser.add_argument("--chapters", nargs="+", metavar="CHAPTER",
                              help="execute only these chapters (stems as in _toc.yml)")
    build_parser.add_argument("--no-html", action="store_true",
                              help="execute the chapters but skip jupyter-book")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        build(args.profile, chapters=args.chapters, html=not args.no_html)
    except (BuildError, ValueError, TypeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    log.info("done in %.0f s", time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
