"""The pip requirements and the conda environment list the same packages."""

import re

import yaml


def pip_lines(text):
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line]


def normalise(requirement):
    name, _, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "-", name).lower(), version


def test_environment_yml_matches_requirements(root):
    requirements = sorted(normalise(r) for r in pip_lines((root / "requirements.txt").read_text()))
    environment = yaml.safe_load((root / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1
    conda_pip = sorted(normalise(r) for r in pip_sections[0] if r != "-e .")
    assert conda_pip == requirements


def test_every_requirement_is_pinned(root):
    for requirement in pip_lines((root / "requirements.txt").read_text()):
        assert "==" in requirement, requirement
    assert "torch==2.13.0" in pip_lines((root / "requirements.txt").read_text())
