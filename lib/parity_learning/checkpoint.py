"""Save and load a run's state exactly: model tensors, optimizer state, RNGs.

A checkpoint contains every tensor of a model (``model.parameters()`` and
``model.frozen_tensors()``), the optimizer's ``state_dict()``, the states of
named ``torch.Generator`` objects and any further named groups of tensors,
such as a DFA rule's feedback matrices. Loading copies the saved values into
the existing tensors in place, so an optimizer built over
``model.parameters()`` keeps pointing at them; a run that loads a checkpoint
and continues with the same data and steps is bitwise equal to a run that
never stopped (on CPU).

NOTE: ``train.train`` starts every call at epoch 1 with a fresh batch-order
stream, so two ``train`` calls do not continue one run. Exact resumption needs
a loop that steps itself and checkpoints its own generators.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from . import __version__

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint"]

log = logging.getLogger(__name__)

#: Marker and version of the file layout, checked on load.
FORMAT = {"name": "parity_learning.checkpoint", "version": 1}


def _copies(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def save_checkpoint(
    path: str | os.PathLike,
    model,
    optimizer=None,
    *,
    generators: Mapping[str, torch.Generator] | None = None,
    tensors: Mapping[str, Sequence[torch.Tensor]] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``, ``optimizer`` and the named extras to ``path``.

    ``generators`` maps a name to a generator whose state is saved;
    ``tensors`` maps a name to a list of tensors (for example
    ``{"feedback": rule.feedback}``). ``metadata`` contains plain values
    (numbers, strings, lists, dicts) that ``load_checkpoint`` returns. The
    file is written to a temporary name first and then renamed, so an
    interrupted save leaves an older checkpoint at ``path`` intact.
    """
    path = Path(path)
    content = {
        "format": dict(FORMAT),
        "library_version": __version__,
        "model": {
            "class": type(model).__name__,
            "parameters": _copies(model.parameters()),
            "frozen": _copies(model.frozen_tensors()),
        },
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
        "tensors": {name: _copies(group) for name, group in (tensors or {}).items()},
        "metadata": dict(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(content, partial)
    os.replace(partial, path)
    log.info("checkpoint of %s saved to %s", type(model).__name__, path)
    return path


def _check_group(description: str, targets: Sequence[torch.Tensor], saved) -> None:
    """Raise unless ``saved`` matches ``targets`` in count, shapes and dtypes."""
    targets = list(targets)
    if len(saved) != len(targets):
        raise ValueError(
            f"checkpoint has {len(saved)} tensors of {description}, the target has {len(targets)}"
        )
    for index, (target, value) in enumerate(zip(targets, saved)):
        if value.shape != target.shape or value.dtype != target.dtype:
            raise ValueError(
                f"tensor {index} of {description}: checkpoint has shape {tuple(value.shape)} "
                f"and dtype {value.dtype}, the target has shape {tuple(target.shape)} "
                f"and dtype {target.dtype}"
            )


def load_checkpoint(
    path: str | os.PathLike,
    model,
    optimizer=None,
    *,
    generators: Mapping[str, torch.Generator] | None = None,
    tensors: Mapping[str, Sequence[torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """Restore what ``save_checkpoint`` wrote into existing objects; return its metadata.

    ``model`` must have the saved tensor shapes and dtypes. Its tensors, the
    generators and the named tensor groups are overwritten in place, and the
    optimizer loads the saved state. Every generator and group requested
    must be in the file. A model, optimizer or group that does not match
    raises ValueError before anything is overwritten.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    # weights_only=True unpickles tensors and plain containers only.
    content = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        found = content.get("format") if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"{path} is not a checkpoint of format {FORMAT}, found {found!r}")

    saved_class = content["model"]["class"]
    if saved_class != type(model).__name__:
        raise ValueError(
            f"checkpoint {path} contains a {saved_class}, expected a {type(model).__name__}"
        )
    if optimizer is not None and content["optimizer"] is None:
        raise ValueError(f"checkpoint {path} has no optimizer state")
    generators = dict(generators or {})
    tensors = dict(tensors or {})
    for kind, requested in (("generator", generators), ("tensor group", tensors)):
        stored = content["generators" if kind == "generator" else "tensors"]
        missing = sorted(set(requested) - set(stored))
        if missing:
            raise ValueError(
                f"checkpoint {path} has no {kind} {missing}; it has {sorted(stored)}"
            )

    # Check every group first and let the optimizer validate its state (it
    # changes nothing when it raises), so a mismatch leaves all targets as
    # they were.
    groups = [("model parameters", model.parameters(), content["model"]["parameters"]),
              ("frozen model tensors", model.frozen_tensors(), content["model"]["frozen"])]
    groups += [(f"group {name!r}", tensors[name], content["tensors"][name]) for name in tensors]
    for description, targets, saved in groups:
        _check_group(description, targets, saved)
    if optimizer is not None:
        optimizer.load_state_dict(content["optimizer"])

    with torch.no_grad():
        for _, targets, saved in groups:
            for target, value in zip(targets, saved):
                target.copy_(value)
    for name, generator in generators.items():
        generator.set_state(content["generators"][name])
    log.info("checkpoint %s loaded into %s", path, type(model).__name__)
    return content["metadata"]
