"""Generated datasets as training, validation and test data for a model (Dexed): compatibility checks.

A dataset directory (see `synthinv.data.shards`) records the synth, its settings and spec hash, the split
seed and the log-mel settings in its manifest. A model can use it only when those fit:

    synth, manifest = synth_of_dataset("data/dexed_train")        # the synth a training run is built for
    ds = open_dataset("data/dexed_val", synth, role="validation")  # ShardDataset, or a one-line DatasetError

The synth's prior ("patch" / "uniform") may differ between a model and its validation or test data (it
changes which patches are drawn, not what a parameter vector means); everything else must match.
"""

from __future__ import annotations

from pathlib import Path

from synthinv import synths
from synthinv.data.shards import MANIFEST, DatasetError, ShardDataset, finite_problem, read_manifest
from synthinv.errors import SynthinvError
from synthinv.synths import Synth

__all__ = ["DatasetError", "open_dataset", "synth_of_dataset", "check_disjoint", "first_examples"]

PRIOR_KEY = "prior"
# The seeds the scripts generate their train, validation and test datasets with (`synthinv generate --seed`);
# a lookup bank built beside them must stay off all three (bank.get_bank's `reserved`).
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


def _manifest(data_dir: Path | str, role: str) -> dict:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{role} dataset not found: {data_dir} is not a directory")
    manifest = read_manifest(data_dir)
    if manifest is None:
        raise DatasetError(f"{data_dir} holds no {MANIFEST}: not a dataset written by `synthinv generate`")
    return manifest


def synth_of_dataset(data_dir: Path | str, role: str = "training") -> tuple[Synth, dict]:
    """-> (synth, manifest): the synth a dataset was generated with (raises DatasetError if the dataset was
    made with a parameter spec this version of synthinv does not have)."""
    manifest = _manifest(data_dir, role)
    info = manifest.get("synth") or {}
    try:
        synth = synths.from_settings({"name": info.get("name"), **info.get("settings", {})})
    except (SynthinvError, TypeError, ValueError) as exc:
        raise DatasetError(f"{data_dir}: cannot build its synth {info.get('name')!r} ({exc})") from None
    if synth.spec.hash() != manifest.get("spec_hash"):
        raise DatasetError(f"{data_dir} was generated with {synth.name} parameter spec {manifest.get('spec_hash')}, "
                           f"this synthinv has {synth.spec.hash()}; regenerate the dataset")
    return synth, manifest


def open_dataset(data_dir: Path | str, synth: Synth, role: str = "training", allow_other_prior: bool = True,
                 verify: bool = False) -> ShardDataset:
    """The finished shards of `data_dir` as a ShardDataset, after checking that they were generated for
    `synth` (name, settings and spec hash; the prior may differ when `allow_other_prior`) and with the
    log-mel settings its encoder takes. Raises DatasetError with one line saying what differs.
    `verify`: also check every finished shard's checksum and parameters (ShardDataset)."""
    manifest = _manifest(data_dir, role)
    info = manifest.get("synth") or {}
    if info.get("name") != synth.name:
        raise DatasetError(f"{data_dir} is a {info.get('name')!r} dataset, but the model is for {synth.name!r}")
    ours, theirs = dict(synth.spec.settings), dict(info.get("settings", {}))
    if allow_other_prior:
        ours.pop(PRIOR_KEY, None), theirs.pop(PRIOR_KEY, None)
    if ours != theirs:
        diff = ", ".join(f"{k} {theirs.get(k)!r} vs {ours.get(k)!r}" for k in sorted(set(ours) | set(theirs))
                         if ours.get(k) != theirs.get(k))
        raise DatasetError(f"{data_dir} was generated with other {synth.name} settings than the model's ({diff})")
    same_prior = info.get("settings", {}).get(PRIOR_KEY) == synth.spec.settings.get(PRIOR_KEY)
    if same_prior and manifest.get("spec_hash") != synth.spec.hash():
        raise DatasetError(f"{data_dir} has parameter spec {manifest.get('spec_hash')}, the model has "
                           f"{synth.spec.hash()}; regenerate the dataset")
    if not same_prior:
        synth_of_dataset(data_dir, role)  # its own spec must still be this version's
    want = synth.feature_settings
    if want is not None and manifest.get("features") != want:
        raise DatasetError(f"{data_dir} stores log-mels {manifest.get('features')}, the {synth.name} encoder takes {want}")
    if manifest.get("params_dim") != synth.spec.size:
        raise DatasetError(f"{data_dir} stores {manifest.get('params_dim')} parameter columns, the model has {synth.spec.size}")
    return ShardDataset(data_dir, verify=verify)


def check_disjoint(train_manifest: dict | None, other_seed: int, role: str, where: str) -> None:
    """Refuse validation/test examples drawn from the training split's seed (they would be training examples)."""
    if train_manifest is not None and int(train_manifest["seed"]) == int(other_seed):
        raise DatasetError(f"{role} data ({where}) use seed {other_seed}, the same split as the training data; "
                           f"generate {role} data with another seed")


def first_examples(data_dir: Path | str, synth: Synth, n: int, role: str = "test"):
    """-> (params (n, P), features (n, ...), audio (n, T), manifest): the first n examples of a dataset for
    `synth` (checked by `open_dataset`), their audio re-rendered (shards store parameters and features)."""
    import torch

    ds = open_dataset(data_dir, synth, role=role, verify=True)  # a corrupt shard is named now, not met mid-read
    rows = [ds[i] for i in range(min(n, len(ds)))]
    params, feats = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
    problem = finite_problem({"mel": feats.numpy()})
    if problem:
        raise DatasetError(f"{data_dir}: the first {len(rows)} examples' {problem}; run `synthinv data check {data_dir}`")
    return params, feats, synth.render(params), ds.manifest
