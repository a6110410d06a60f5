"""The torchyard artifact format: a base model plus the transforms applied to it.

Plain `torch.save` of a quantized model is unsupported and `torch.export` cannot export
an eager dynamically-quantized model, so an artifact records how to rebuild the model
instead of pickling it:

    <artifact>/manifest.json   {"format": "torchyard", "formatVersion": 1,
                                "base": {"factory": "m:f", "kwargs": {...}}
                                     or {"huggingface": "base"} (config in base/),
                                "transforms": [{"name": "...", ...params}, ...],
                                ...job figures}
    <artifact>/weights.safetensors  the final state_dict (after the transforms)
    <artifact>/base/                 a Hugging Face config + tokenizer, if any
    <artifact>/DIGEST                sha256 of everything else (torchyard.storage)

Loading builds the base model (untrained: its weights come from weights.safetensors),
replays each transform in order so the module structure matches, then loads the
state_dict. Transforms register themselves in TRANSFORMS; a transform must accept a
module with random weights and produce the same structure as when it ran for real.

A manifest is data that names code, and whoever can write the store writes it: its
factory must be one torchyard.factories allows (FactoryNotAllowed otherwise, before
anything is imported), its transforms are looked up by name in TRANSFORMS (nothing is
imported by a manifest's say), and a Hugging Face base must lie inside the artifact,
whose digest covers it (no `../`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.api.common import OutputSpec
from torchyard.storage import (
    Artifact,
    OutputExists,
    check_output,
    describe,
    read_manifest,
    write_directory,
    writer_from_env,
)
from torchyard.workloads.models import ModelLoadError, build
from torchyard.workloads.report import PermanentError

FORMAT = "torchyard"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
BASE_DIR = "base"

Transform = Callable[[nn.Module, dict[str, Any]], nn.Module]
TRANSFORMS: dict[str, Transform] = {}


def transform(name: str) -> Callable[[Transform], Transform]:
    """Register a structural transform under `name` (used in manifests)."""

    def register(func: Transform) -> Transform:
        TRANSFORMS[name] = func
        return func

    return register


def output_is_free(output: OutputSpec) -> None:
    """Fail at once, before any work, when the job's output.uri holds an artifact it may
    not replace: another job's (or a person's) without output.overwrite. The job's own
    artifact (a retry after it had published) is free to replace."""
    try:
        check_output(output.uri, writer_from_env(), output.overwrite)
    except OutputExists as error:
        raise PermanentError("OutputExists", str(error)) from None


def save_artifact(
    uri: str,
    model: nn.Module,
    *,
    base: dict[str, Any],
    transforms: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    base_files: Path | None = None,
    overwrite: bool = False,
) -> Artifact:
    """Write `model` at `uri` atomically; return its URI, digest and size. The job this
    process works for (TORCHYARD_JOB, TORCHYARD_JOB_UID) is recorded in the manifest; an
    artifact already at `uri` is replaced only when it is that job's or with `overwrite`
    (else PermanentError OutputExists).

    `base` is {"factory": "module:function", "kwargs": {...}} or {"huggingface": "base"}
    with `base_files` a Hugging Face directory whose config and tokenizer are copied.
    """
    from safetensors.torch import save_file

    manifest = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "base": base,
        "transforms": transforms or [],
        **(extra or {}),
    }
    try:
        with write_directory(
            uri, manifest, writer=writer_from_env(), overwrite=overwrite
        ) as staging:
            save_file(state_tensors(model), str(staging / WEIGHTS))
            if base_files is not None:
                _copy_config(base_files, staging / BASE_DIR)
    except OutputExists as error:
        raise PermanentError("OutputExists", str(error)) from None
    return describe(uri)


def load_artifact(path: Path) -> nn.Module:
    """Rebuild the model an artifact describes and load its weights."""
    from safetensors.torch import load_file

    try:
        manifest = read_manifest(path)
    except (ValueError, RecursionError) as error:
        raise ModelLoadError(f"{path}: manifest.json is not readable JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelLoadError(
            f"{path}: not a torchyard artifact (no manifest.json of format torchyard)"
        )
    version = manifest.get("formatVersion", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: artifact format {version!r} is newer than this worker")
    base = manifest.get("base")
    if not isinstance(base, dict):
        raise ModelLoadError(f"{path}: manifest.json has no base object")
    model = _build_base(path, base)
    for step in _transform_steps(path, manifest.get("transforms", [])):
        params = {k: v for k, v in step.items() if k != "name"}
        try:
            model = TRANSFORMS[step["name"]](model, params)
        except Exception as error:  # the manifest's parameters, not a passing fault
            raise ModelLoadError(
                f"{path}: transform {step['name']!r} cannot be replayed: "
                f"{type(error).__name__}: {error}"
            ) from None
    state = load_file(str(path / WEIGHTS))
    _load_tensors(model, state)
    return model.eval()


def _build_base(path: Path, base: dict[str, Any]) -> nn.Module:
    if "factory" in base:
        # The factory is checked (torchyard.factories) before its module is imported.
        kwargs = base.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ModelLoadError(f"{path}: manifest base.kwargs must be an object")
        return build(str(base["factory"]), kwargs)
    if "huggingface" in base:
        from transformers import AutoConfig, AutoModel

        # Never trust_remote_code: a config's auto_map would run the artifact's code.
        config = AutoConfig.from_pretrained(str(base_files(path, base)), local_files_only=True)
        return AutoModel.from_config(config)
    raise ModelLoadError(f"{path}: manifest base must name a factory or a huggingface config")


def base_files(path: Path, base: dict[str, Any]) -> Path:
    """The Hugging Face base's directory (config, tokenizer), which must lie inside the
    artifact: its digest covers nothing outside."""
    name = base.get("huggingface")
    inside = path.resolve()
    found = (path / name).resolve() if isinstance(name, str) and name else None
    if found is None or not found.is_relative_to(inside) or found == inside:
        raise ModelLoadError(
            f"{path}: manifest base.huggingface must name a directory inside the artifact, "
            f"not {name!r}"
        )
    return found


def _transform_steps(path: Path, steps: Any) -> list[dict[str, Any]]:
    """The manifest's transforms, each a registered one: a name only looks one up in
    TRANSFORMS (torchyard's own modules register them), it never imports anything."""
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise ModelLoadError(f"{path}: manifest transforms must be a list of objects")
    for step in steps:
        name = step.get("name")
        if isinstance(name, str) and name not in TRANSFORMS:
            _import_transform_modules()
        if not isinstance(name, str) or name not in TRANSFORMS:
            known = ", ".join(sorted(TRANSFORMS))
            raise ModelLoadError(f"{path}: unknown transform {name!r}; known: {known}")
    return steps


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as contiguous plain tensors, as weights.safetensors stores it.

    Quantized layers must keep their state as plain tensors (int8 values and float
    scales, see torchyard.workloads.compress.qmodules); anything else in a state_dict
    (packed kernel objects) is not state. Tensors that share memory (tied weights) are
    stored as copies, because safetensors refuses shared storage.
    """
    seen: set[int] = set()
    state = {}
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            continue
        pointer = value.untyped_storage().data_ptr()
        shared = pointer in seen and value.numel() > 0
        seen.add(pointer)
        state[key] = value.detach().clone() if shared else value.detach().contiguous()
    return state


def _load_tensors(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelLoadError(
            f"artifact weights do not match the rebuilt model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


def _copy_config(source: Path, target: Path) -> None:
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        # Config and tokenizer only: the weights are in weights.safetensors.
        if file.is_file() and not file.name.endswith((".safetensors", ".bin", ".pt", ".h5")):
            shutil.copy2(file, target / file.name)


def _import_transform_modules() -> None:
    """Transforms live with the workloads that apply them; import those on demand (a
    fixed list of torchyard's modules, whatever the manifest says)."""
    import importlib

    for module in ("torchyard.workloads.compress", "torchyard.workloads.textmodels"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue
