"""Bad-input regressions for the hardening issue (~690 hostile inputs to the library and CLI).

Three tables and a few file-system tests:

* **CLI**: ``(argv, exit code, words in stderr)`` rows run in-process through ``main``:
  a one-line error, never a traceback, and no file written or changed anywhere (the
  session's temporary folder is compared before and after; the working directory is an
  empty folder that must stay empty). An optional fourth item checks more.
* **API**: ``(callable, args, kwargs, exception, words)`` rows: a ``ValueError`` (or its
  subclass ``CheckpointError``) whose message names the argument.
* **files**: atomic checkpoints under concurrent writers and readers, a full disk
  (``ulimit -f``), and corrupt cache files moved aside and recomputed.

Placeholders in argv (``{tmp}``, ``{ckpt}``, ``{spec_NAME}``, ``{file_NAME}``, ...) are
built on demand by :class:`_Paths`.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from transferability.adversarial import alpha
from transferability.attacks import FGSM, MIFGSM, PGD, AttackSpec, create_attack
from transferability.cli import main
from transferability.data import dataset_from_spec, describe_dataset, per_class
from transferability.features import extract, predict
from transferability.html_report import format_result
from transferability.models import CheckpointError, create_model, load_checkpoint, save_checkpoint
from transferability.ranking import rank_sources
from transferability.studies.adv_knowledge import adv_knowledge_study
from transferability.training import fit
from transferability.transfer_matrix import transfer_matrix
from transferability.zoo import build_zoo, load_spec

# ---- shared fixtures -------------------------------------------------------------------------
TINY_SPEC = """\
train: {epochs: 1, batch_size: 64}
models:
  - {name: m, arch: mlp, data: {dataset: digits, n_per_class: 10}}
"""


@pytest.fixture(scope="module")
def shared_zoo(tmp_path_factory):
    """One tiny trained zoo (an mlp on 100 digits, 1 epoch) for every test that needs a
    real model; its files must never change."""
    root = tmp_path_factory.mktemp("shared-zoo")
    spec = root / "zoo.yaml"
    spec.write_text(TINY_SPEC)
    zoo = build_zoo(str(spec), root / "cache")
    return SimpleNamespace(root=root, spec=str(spec), cache=str(root / "cache"),
                           ckpt=str(zoo.path("m")), model=zoo["m"])


class _Payload:
    """Pickles to ``Path(marker).touch()``: harmless, but proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _valid_payload() -> dict:
    """The dict inside a valid checkpoint of a small mlp."""
    from transferability.models.checkpoint import _FORMAT

    model = create_model("mlp", hidden=16)
    return {"format": _FORMAT, "meta": json.dumps(model.meta),
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def _bad_checkpoint(kind: str, folder: Path) -> Path:
    """A malformed checkpoint file of the given ``kind`` in ``folder``."""
    path = folder / f"ckpt-{kind}.pt"
    payload = _valid_payload()
    meta = json.loads(payload["meta"])
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        save_checkpoint(create_model("mlp", hidden=16), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "folder":
        path.mkdir()
    elif kind == "plain_state_dict":
        torch.save(payload["state_dict"], path)
    elif kind == "no_meta":
        del payload["meta"]
        torch.save(payload, path)
    elif kind == "meta_list":
        torch.save({**payload, "meta": "[1, 2]"}, path)
    elif kind == "meta_int":
        torch.save({**payload, "meta": 5}, path)
    elif kind == "meta_bad_json":
        torch.save({**payload, "meta": "{not json"}, path)
    elif kind == "state_list":
        torch.save({**payload, "state_dict": list(payload["state_dict"].values())}, path)
    elif kind == "state_not_tensors":
        torch.save({**payload, "state_dict": {"w": 1.0}}, path)
    elif kind == "unknown_arch":
        torch.save({**payload, "meta": json.dumps({**meta, "arch": "vgg"})}, path)
    elif kind == "classes_str":
        torch.save({**payload, "meta": json.dumps({**meta, "num_classes": "10"})}, path)
    elif kind == "arch_kwargs_list":
        torch.save({**payload, "meta": json.dumps({**meta, "arch_kwargs": [16]})}, path)
    elif kind == "huge_classes":
        torch.save({**payload, "meta": json.dumps({**meta, "num_classes": 10**7})}, path)
    elif kind == "huge_hidden":
        torch.save({**payload, "meta": json.dumps({**meta, "arch_kwargs": {"hidden": 10**9}})},
                   path)
    elif kind == "pickle_payload":
        torch.save({**payload, "extra": _Payload(folder / "PWNED")}, path)
    else:  # pragma: no cover - a typo in a table
        raise KeyError(kind)
    return path


def _image_folder_with_corrupt_png(folder: Path) -> Path:
    from PIL import Image

    root = folder / "images"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    good = (root / "a" / "0.png").read_bytes()
    for i in range(3):  # class b's only image is truncated: skipped, the class left empty
        (root / "b" / f"{i}.png").unlink()
    (root / "b" / "9.png").write_bytes(good[: len(good) // 2])
    return root


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _rgb_npz(folder: Path) -> Path:
    """3-channel 32×32 images (2 classes): the shared zoo's model takes 1×28×28."""
    x = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    np.savez(folder / "rgb.npz", x=x, y=np.arange(40) % 2)
    return folder / "rgb.npz"


def _rgb_split_folder(folder: Path) -> Path:
    """``train/`` and ``test/`` class folders of 32×32 colour PNGs, as CIFAR-10 ships."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for c in ("cat", "dog"):
            (folder / "rgb" / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / "rgb" / split / c / f"{i}.png")
    return folder / "rgb"


def _nan_npz(folder: Path) -> Path:
    x = np.random.default_rng(0).random((20, 28, 28)).astype(np.float32)
    x[3, 2, 2] = np.nan
    np.savez(folder / "nan.npz", x=x, y=np.arange(20) % 2)
    return folder / "nan.npz"


def _tiny_npz(folder: Path) -> Path:
    """10 digits per class: the stratified split leaves 8 train and 2 test images a class."""
    from transferability.data import load_dataset, per_class

    d = per_class(load_dataset("digits", "all"), 10)
    np.savez(folder / "tiny.npz", x=d.x.numpy(), y=d.y.numpy())
    return folder / "tiny.npz"


FILES = {
    "plain": lambda d: _write(d / "plain.txt", b"I am a file"),
    "nan_npz": _nan_npz,
    "tiny_npz": _tiny_npz,
    "bad_png": _image_folder_with_corrupt_png,
    "garbage_npz": lambda d: _write(d / "garbage.npz", np.random.default_rng(0).bytes(2048)),
    "rgb_npz": _rgb_npz,
    "rgb_folder": _rgb_split_folder,
}
USER_MODELS = Path(__file__).parent / "user_models.py"
CKPT_KINDS = ["missing", "empty", "random_bytes", "truncated", "folder", "plain_state_dict",
              "no_meta", "meta_list", "meta_int", "meta_bad_json", "state_list",
              "state_not_tensors", "unknown_arch", "classes_str", "arch_kwargs_list",
              "huge_classes", "huge_hidden", "pickle_payload"]


class _Paths(dict):
    """argv placeholders, each built on first use under ``tmp``."""

    def __init__(self, tmp: Path, zoo: SimpleNamespace | None):
        super().__init__(tmp=str(tmp), cache=str(tmp / "cache"))
        self.tmp, self.zoo = tmp, zoo

    def __missing__(self, key: str) -> str:
        kind, _, name = key.partition("_")
        if key in ("zoo", "zoo_cache", "ckpt"):
            value = {"zoo": self.zoo.spec, "zoo_cache": self.zoo.cache,
                     "ckpt": self.zoo.ckpt}[key]
        elif kind == "spec":
            path = self.tmp / f"{name}.yaml"
            text = SPECS[name]
            path.write_text(text(self.tmp) if callable(text) else text)
            value = str(path)
        elif kind == "file":
            value = str(FILES[name](self.tmp))
        elif kind == "ckpt":
            value = str(_bad_checkpoint(name, self.tmp))
        else:  # pragma: no cover - a typo in a table
            raise KeyError(key)
        self[key] = value
        return value


# ---- CLI table -------------------------------------------------------------------------------
def _lol_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\nmodels: []\n"


def _model(name: str, extra: str = "", data: str = "{dataset: digits, n_per_class: 10}"):
    return f"  - {{name: {name}, arch: mlp, data: {data}{extra}}}\n"


HEAD = "train: {epochs: 1}\nmodels:\n"
SPECS = {
    "tiny": TINY_SPEC,
    "traversal": HEAD + _model("'../../../escaped'"),
    "absolute": lambda tmp: HEAD + _model(f"'{tmp}/abs/x'"),
    "nul_traversal": HEAD + _model('"../../x\\0y"'),
    "nul": HEAD + _model('"a\\0b"'),
    "long_name_second": HEAD + _model("ok") + _model("a" * 300),
    "batch_size_0": "train: {epochs: 1, batch_size: 0}\nmodels:\n" + _model("m"),
    "epochs_float": "train: {epochs: 2.5}\nmodels:\n" + _model("m"),
    "lr_list": HEAD + _model("m", ", train: {lr: [1]}"),
    "epochs_str": HEAD + _model("m", ', train: {epochs: "3"}'),
    "arch_kwarg_unknown": HEAD + _model("m", ", arch_kwargs: {depth: 3}"),
    "arch_kwarg_type": HEAD + "  - {name: m, arch: cnn, data: digits, arch_kwargs: {width: a}}\n",
    "huge_n_per_class_second": HEAD + _model("ok") + _model(
        "big", data="{dataset: digits, n_per_class: 1000000000}"),
    "unknown_dataset_second": HEAD + _model("ok") + _model("bad", data="imagenet"),
    "alias_bomb": _lol_bomb(),
    "huge": HEAD + _model("m") + "# " + "x" * (1 << 20) + "\n",
    "python_object": lambda tmp: f"!!python/object/apply:os.system ['touch {tmp}/PWNED']\n",
    "unknown_top_key": "modles: []\n" + HEAD + _model("m"),
    "seed_negative": "train: {epochs: 1, seed: -1}\nmodels:\n" + _model("m"),
    "seed_huge": f"train: {{epochs: 1, seed: {2**40}}}\nmodels:\n" + _model("m"),
    # checks that need the data (class count, class sizes, pixels): before any train job
    "mixture_k_42": HEAD + _model("m", data="{mixture: [synthetic, synthetic], k: 42}"),
    "class_99": HEAD + _model("m", data="{dataset: digits, classes: [0, 99]}"),
    "relabel_gap": HEAD + _model("m", data="{dataset: digits, relabel: [0, 0, 1, 1, 2, 2, 3, "
                                           "3, 5, 5]}"),
    "n_per_class_above_data": HEAD + _model(
        "m", data="{dataset: synthetic, options: {n_per_class: 20}, n_per_class: 1000}"),
    "shared_nan": HEAD + _model("m", data="{dataset: synthetic, options: {shared: .nan}}"),
    "noise_negative": HEAD + _model("m", data="{dataset: synthetic, options: {noise: -1}}"),
    "image_size_misfit": HEAD + _model("m", ", arch_kwargs: {image_size: 5}"),
    "npz_nan": lambda tmp: HEAD + _model("m", data=str(_nan_npz(tmp))),
    "npz_options": lambda tmp: HEAD + _model(
        "m", data=f"{{dataset: {_nan_npz(tmp)}, options: {{n_per_class: 3}}}}"),
    "corrupt_image": lambda tmp: HEAD + _model("m", data=str(_image_folder_with_corrupt_png(tmp))),
    "init_other_classes": HEAD + _model("a") + _model(
        "b", ", init: a", data="{dataset: digits, classes: [0, 1], n_per_class: 10}"),
}


def _files_under(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: files with their size and mtime, folders with ``()``."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            found[str(p)] = (st.st_size, st.st_mtime_ns) if p.is_file() else ()
    return found


def _no_checkpoint(tmp: Path) -> None:
    written = [p for p in (tmp / "cache").rglob("*") if p.is_file()]
    assert not written, f"a spec error must stop the build before training; found {written}"


def _not_executed(tmp: Path) -> None:
    assert not (tmp / "PWNED").exists(), "the payload ran"


def _victim_unchanged(tmp: Path) -> None:
    assert (tmp / "x").read_text() == "victim"
    _no_checkpoint(tmp)


def _no_stray_a(tmp: Path) -> None:
    assert not list(tmp.rglob("a*")), list(tmp.rglob("a*"))
    _no_checkpoint(tmp)


def _readonly_cache(tmp: Path) -> None:
    assert list((tmp / "readonly").iterdir()) == []


ATTACK = ["attack", "--surrogates", "{ckpt}", "--victims", "{ckpt}", "--dataset", "digits",
          "--n-per-class", "2", "--out", "{tmp}/out", "--cache-dir", "{zoo_cache}"]
PROBE = ["probe", "--target", "digits", "--sources", "{ckpt}", "--cache-dir", "{zoo_cache}"]
TRAINING = ["attack", "--surrogates", "{spec_tiny}", "--victims", "{spec_tiny}", "--dataset",
            "digits", "--eps", "0.1"]


def _with(base: list[str], **options: str) -> list[str]:
    """``base`` with options set: ``n_per_class="0"`` replaces the value of
    ``--n-per-class`` (or appends the option when ``base`` lacks it)."""
    argv = list(base)
    for key, value in options.items():
        opt = "--" + key.replace("_", "-")
        if opt in argv:
            argv[argv.index(opt) + 1] = value
        else:
            argv += [opt, value]
    return argv


def _spec_case(name: str, words, check=_no_checkpoint, code: int = 2):
    return pytest.param(["zoo", "build", f"{{spec_{name}}}", "--cache-dir", "{cache}"], code,
                        words, check, id=f"spec-{name}")


CLI_CASES = [
    # -- zoo specs: refused before anything is trained or written ------------------------
    _spec_case("traversal", ["models[0].name", "not a safe name"]),
    _spec_case("absolute", ["models[0].name", "not a safe name"]),
    _spec_case("nul_traversal", ["models[0].name", "not a safe name"], _victim_unchanged),
    _spec_case("nul", ["models[0].name", "not a safe name"], _no_stray_a),
    _spec_case("long_name_second", ["models[1].name", "at most 100 characters"]),
    _spec_case("batch_size_0", ["batch_size", "expected an integer"]),
    _spec_case("epochs_float", ["epochs", "2.5"]),
    _spec_case("lr_list", ["lr", "expected a number"]),
    _spec_case("epochs_str", ["epochs", "'3'"]),
    _spec_case("arch_kwarg_unknown", ["arch_kwargs", "depth"]),
    _spec_case("arch_kwarg_type", ["arch_kwargs", "width"]),
    _spec_case("huge_n_per_class_second", ["models[1]", "n_per_class", "1000000000"]),
    _spec_case("unknown_dataset_second", ["models[1]", "imagenet"]),
    _spec_case("alias_bomb", ["expands to more than"]),
    _spec_case("huge", ["bytes", "limit"]),
    _spec_case("python_object", ["invalid yaml"],
               lambda tmp: (_not_executed(tmp), _no_checkpoint(tmp))),
    _spec_case("unknown_top_key", ["unknown top-level key", "modles"]),
    _spec_case("seed_negative", ["seed", "-1"]),
    _spec_case("seed_huge", ["seed", str(2**40)]),
    _spec_case("mixture_k_42", ["model 'm'.data", "k:", "[0, 10]", "42"]),
    _spec_case("class_99", ["model 'm'.data", "classes", "[99]", "0..9"]),
    _spec_case("relabel_gap", ["model 'm'.data", "relabel", "0..K-1", "[0, 1, 2, 3, 5]"]),
    _spec_case("n_per_class_above_data", ["n_per_class", "1000", "largest value that works is "
                                          "16"]),
    _spec_case("shared_nan", ["model 'm'.data", "shared", "nan"]),
    _spec_case("noise_negative", ["model 'm'.data", "noise", "-1"]),
    _spec_case("image_size_misfit", ["model 'm'", "image_size", "does not fit", "(1, 28, 28)"]),
    _spec_case("npz_nan", ["nan.npz", "1 NaN"]),
    _spec_case("npz_options", ["options", "n_per_class", "do not apply to user data"]),
    _spec_case("corrupt_image", ["cannot read image", "9.png"]),
    _spec_case("init_other_classes", ["model 'b'.init", "'a' has 10 classes", "2 of"]),
    # -- hostile data and checkpoints ------------------------------------------------------
    pytest.param(_with(PROBE, target="{file_bad_png}"), 2, ["cannot read image", "9.png"],
                 None, id="data-corrupt-png"),
    pytest.param(_with(PROBE, target="{file_garbage_npz}"), 2, ["cannot read", "garbage.npz"],
                 None, id="data-garbage-npz"),
    # -- a model that does not take the data's images: one line before any job ------------
    pytest.param(_with(PROBE, target="{file_rgb_npz}"), 2,
                 ["--sources", "does not fit", "(1×3×32×32)"], None,
                 id="probe-rgb-images-1ch-model"),
    pytest.param(_with(ATTACK, dataset="{file_rgb_npz}", eps="0.1"), 2,
                 ["--surrogates", "does not fit", "(1×3×32×32)"], None,
                 id="attack-rgb-images-1ch-model"),
    pytest.param(["rank", "--target", "{file_rgb_folder}", "--sources",
                  f"py:{USER_MODELS}:fc_like", "--out", "{tmp}/out", "--cache-dir", "{cache}"],
                 2, ["--sources: fc_like does not fit", "(1×3×32×32)", "expected input"],
                 None, id="rank-py-model-misfit-plain-folder"),
    pytest.param(["rank", "--target", "{file_rgb_folder}/train", "--sources",
                  f"py:{USER_MODELS}:fc_like", "--out", "{tmp}/out", "--cache-dir", "{cache}"],
                 2, ["--sources: fc_like does not fit", "(1×3×32×32)"], None,
                 id="rank-py-model-misfit-plain-train-folder"),
    pytest.param(["rank", "--target", "digits", "--sources", f"py:{USER_MODELS}:no_linear",
                  "--out", "{tmp}/out", "--cache-dir", "{cache}"], 2,
                 ["--sources: no_linear does not fit", "layer"], None,
                 id="rank-py-model-without-linear"),
    pytest.param(["robustness", "--model", f"py:{USER_MODELS}:fc_like", "--dataset",
                  "{file_rgb_folder}", "--eps", "8/255", "--out", "{tmp}/out"], 2,
                 ["--model: fc_like does not fit", "(1×3×32×32)"], None,
                 id="robustness-py-model-misfit"),
    pytest.param(["attack", "--surrogates", "{ckpt}", "--victims", f"py:{USER_MODELS}:fc_like",
                  "--dataset", "{file_rgb_folder}", "--eps", "8/255", "--out", "{tmp}/out"], 2,
                 ["does not fit", "(1×3×32×32)"], None, id="attack-victim-misfit"),
    *[pytest.param(_with(PROBE, sources=f"{{ckpt_{kind}}}"), 2,
                   {"missing": ["not a checkpoint file"],
                    "folder": ["not a checkpoint file"],
                    "pickle_payload": ["refusing", "pickled objects", "getattr"],
                    "huge_classes": ["do not match"], "huge_hidden": ["do not match"],
                    "no_meta": ["metadata"], "meta_list": ["metadata"], "meta_int": ["metadata"],
                    "meta_bad_json": ["metadata"], "state_list": ["state_dict"],
                    "state_not_tensors": ["state_dict"], "unknown_arch": ["'vgg'"],
                    "classes_str": ["num_classes", "'10'"], "arch_kwargs_list": ["arch_kwargs"],
                    "plain_state_dict": ["not a transferability checkpoint"],
                    }.get(kind, ["cannot read checkpoint", "corrupt"]),
                   _not_executed, id=f"checkpoint-{kind}") for kind in CKPT_KINDS],
    # -- options: refused by argparse (exit 2) or before any computation --------------------
    pytest.param(_with(ATTACK, eps="0.1", n_per_class="0"), 2, ["--n-per-class", "'0'"], None,
                 id="n-per-class-0"),
    pytest.param(_with(ATTACK, eps="0.1", n_per_class="-1"), 2, ["--n-per-class", "'-1'"],
                 None, id="n-per-class-negative"),
    pytest.param(_with(PROBE, shots="0"), 2, ["--shots", "positive integer"], None,
                 id="shots-0"),
    pytest.param(_with(PROBE, repeats="0"), 2, ["--repeats", "positive integer"], None,
                 id="repeats-0"),
    pytest.param(_with(PROBE, seed="-1"), 2, ["--seed", "-1"], None, id="seed-negative"),
    pytest.param(_with(PROBE, seed="99999999999"), 2, ["--seed", "99999999999"], None,
                 id="seed-huge"),
    pytest.param(_with(ATTACK, eps="0"), 2, ["--eps", "'0'"], None, id="eps-0"),
    pytest.param(_with(ATTACK, eps="nan"), 2, ["--eps", "'nan'"], None, id="eps-nan"),
    pytest.param(_with(ATTACK, eps="inf"), 2, ["--eps", "'inf'"], None, id="eps-inf"),
    pytest.param(_with(ATTACK, eps="0.1", steps="0"), 2, ["--steps", "'0'"], None,
                 id="steps-0"),
    pytest.param(_with(ATTACK, eps="0.1", batch_size="0"), 2, ["--batch-size", "'0'"], None,
                 id="batch-size-0"),
    pytest.param(["study", "theory", "--n", "1000000000", "--out", "{tmp}/out"], 2,
                 ["--n", "in [2, 1000000]"], None, id="theory-n-huge"),
    pytest.param(_with(TRAINING, out="{file_plain}", cache_dir="{cache}"), 2,
                 ["--out", "not a folder"], _no_checkpoint, id="out-is-a-file"),
    pytest.param(_with(["rank", "--target", "digits", "--sources", "{spec_tiny}"],
                       out="{file_plain}", cache_dir="{cache}"), 2,
                 ["--out", "not a folder"], _no_checkpoint, id="rank-out-is-a-file"),
    pytest.param(_with(TRAINING, out="{tmp}/out", cache_dir="{file_plain}"), 2,
                 ["--cache-dir", "not a folder"], None, id="cache-dir-is-a-file"),
    pytest.param(_with(TRAINING, out="{tmp}/out", cache_dir="{file_plain}/sub"), 2,
                 ["--cache-dir", "cannot write"], None, id="cache-dir-under-a-file"),
    pytest.param(_with(TRAINING, out="{tmp}/out", cache_dir="{tmp}/readonly"), 2,
                 ["--cache-dir", "cannot write"], _readonly_cache, id="cache-dir-read-only"),
    pytest.param(_with(ATTACK, eps="0.1", attack="deepfool"), 2,
                 ["invalid choice", "'deepfool'", "pgd"], None, id="attack-unknown"),
    pytest.param(ATTACK, 2, ["--eps", "budget"], None, id="attack-without-eps"),
    pytest.param(_with(PROBE, target="imagenet"), 2, ["'imagenet'", "neither a dataset"],
                 None, id="dataset-unknown"),
    pytest.param(_with(PROBE, target="mni\0st"), 2, ["neither a dataset"], None,
                 id="dataset-nul"),
    pytest.param(_with(PROBE, target="../../../../etc/passwd"), 2, ["neither a dataset"],
                 None, id="dataset-not-npz"),
    pytest.param(_with(PROBE, sources="no-such-model"), 2,
                 ["'no-such-model'", "not a checkpoint file"], None, id="model-neither"),
    pytest.param(_with(PROBE, sources="a\0b.pt"), 2, ["not a model argument"], None,
                 id="model-nul"),
    pytest.param(_with(PROBE, sources="py:nonexistent.module:f"), 2,
                 ["py:nonexistent.module:f", "ModuleNotFoundError"], None,
                 id="model-py-missing-module"),
    pytest.param(_with(PROBE, sources="py:os:getcwd"), 2, ["returned str", "nn.Module"], None,
                 id="model-py-not-a-module"),
    pytest.param(_with(PROBE, sources="py:os"), 2, ["py:MODULE:FUNCTION"], None,
                 id="model-py-malformed"),
    # -- more per class than the data have: one rule, before any job (exit 2) --------------
    pytest.param(["study", "adv-knowledge", "--target", "digits", "--sources", "{ckpt}",
                  "--alpha-per-class", "500", "--out", "{tmp}/out", "--cache-dir", "{cache}"],
                 2, ["--alpha-per-class", "500", "'digits/train'",
                     "largest value that works is 139"],
                 _no_checkpoint, id="study-alpha-per-class-above-data"),
    pytest.param(["study", "adv-knowledge", "--target", "{file_tiny_npz}", "--sources",
                  "{ckpt}", "--alpha-per-class", "5", "--out", "{tmp}/out", "--cache-dir",
                  "{cache}"], 2, ["--alpha-per-class", "'tiny/test'", "largest value that "
                                  "works is 2"], _no_checkpoint,
                 id="study-alpha-per-class-tiny-test"),
    pytest.param(["study", "adv-knowledge", "--target", "{file_tiny_npz}", "--sources",
                  "{ckpt}", "--alpha-per-class", "2", "--shots", "9", "--out", "{tmp}/out",
                  "--cache-dir", "{cache}"], 2, ["--shots", "'tiny/train'", "is 8"],
                 _no_checkpoint, id="study-shots-above-data"),
    pytest.param(_with(ATTACK, dataset="{file_tiny_npz}", eps="0.1", n_per_class="3"), 2,
                 ["--n-per-class", "'tiny/test'", "largest value that works is 2"], None,
                 id="attack-n-per-class-above-data"),
    pytest.param(["rank", "--target", "{file_tiny_npz}", "--sources", "{ckpt}", "--reference",
                  "{ckpt}", "--out", "{tmp}/out", "--cache-dir", "{zoo_cache}"], 2,
                 ["--alpha-per-class", "20", "'tiny/train'", "is 8"], None,
                 id="rank-alpha-per-class-above-data"),
    pytest.param(["rank", "--target", "digits", "--sources", "{ckpt}", "--reference", "{ckpt}",
                  "--reference-epochs", "3", "--out", "{tmp}/out", "--cache-dir",
                  "{zoo_cache}"], 2, ["--reference-epochs: only with --reference train"], None,
                 id="rank-reference-epochs-of-a-given-reference"),
    pytest.param(["rank", "--target", "digits", "--sources", "{ckpt}", "--reference-epochs",
                  "3", "--out", "{tmp}/out", "--cache-dir", "{zoo_cache}"], 2,
                 ["--reference-epochs: only with --reference train"], None,
                 id="rank-reference-epochs-without-reference"),
    pytest.param(["rank", "--target", "digits", "--sources", "{ckpt}", "--reference", "train",
                  "--reference-epochs", "0", "--out", "{tmp}/out"], 2,
                 ["--reference-epochs"], None, id="rank-reference-epochs-zero"),
    pytest.param(_with(PROBE, target="{file_tiny_npz}", shots="9"), 2,
                 ["--shots", "'tiny/train'", "is 8"], None, id="probe-shots-above-data"),
    pytest.param(["study", "surrogates", "--quick", "--target", "{file_tiny_npz}", "--out",
                  "{tmp}/out", "--cache-dir", "{cache}"], 2,
                 ["--train-per-class", "'tiny/train'", "is 8"], _no_checkpoint,
                 id="surrogates-target-too-small"),
    pytest.param(["study", "robust-transfer", "--quick", "--target", "{file_tiny_npz}", "--out",
                  "{tmp}/out", "--cache-dir", "{cache}"], 2,
                 ["--target-per-class", "'tiny/train'", "is 8"], _no_checkpoint,
                 id="robust-transfer-target-too-small"),
    # -- the results store, the report, the backends ----------------------------------------
    pytest.param(["study", "adv-knowledge", "--target", "digits", "--sources", "{ckpt}",
                  "--store", "{file_plain}", "--out", "{tmp}/out", "--cache-dir", "{cache}"], 2,
                 ["--store", "not a results store", "left untouched"], _no_checkpoint,
                 id="store-not-a-store"),
    pytest.param(["results", "list", "--store", "{tmp}"], 2, ["is a folder"], None,
                 id="store-is-a-folder"),
    pytest.param(["report", "--out", "{tmp}", "--cache-dir", "{zoo_cache}"], 2,
                 ["--out", "is a folder"], None, id="report-out-is-a-folder"),
    pytest.param(["study", "adv-knowledge", "--sources", "{ckpt}", "--scheduler",
                  "tcp://127.0.0.1:1", "--out", "{tmp}/out", "--cache-dir", "{cache}"], 2,
                 ["--scheduler", "--backend dask"], _no_checkpoint, id="scheduler-without-dask"),
    pytest.param(["benchmark", "--quick", "--backend", "dask", "--workers", "0",
                  "--cache-dir", "{cache}"], 2, ["--workers", "positive integer"], None,
                 id="workers-0"),
    pytest.param(["results", "gc", "--yes", "--store", "{file_plain}"], 2,
                 ["not a results store"], None, id="gc-not-a-store"),
]


def _cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return exc.code


@pytest.mark.parametrize(("argv", "code", "words", "check"), CLI_CASES)
def test_cli_bad_input(argv, code, words, check, shared_zoo, tmp_path, monkeypatch, capsys):
    paths = _Paths(tmp_path, shared_zoo)
    argv = [a.format_map(paths) for a in argv]
    readonly = tmp_path / "readonly"
    if any(a == str(readonly) for a in argv):
        readonly.mkdir()
        readonly.chmod(0o500)
        if os.access(readonly, os.W_OK):
            readonly.chmod(0o700)
            pytest.skip("running as root: a mode-0500 folder stays writable")
    (tmp_path / "x").write_text("victim")  # outside the cache, where "../../x" would land
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TRANSFERABILITY_CACHE", str(tmp_path / "env-cache"))
    # the session's temporary folder: this test's and its neighbours', where "../../../x" lands
    before = _files_under(tmp_path.parent)
    start = time.perf_counter()
    try:
        got = _cli(argv)
    finally:
        if readonly.exists():
            readonly.chmod(0o700)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert got == code, err
    assert "Traceback" not in err
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", err), f"control characters in {err!r}"
    for word in words:
        assert word.lower() in err.lower(), f"{word!r} not in {err!r}"
    if "usage:" not in err:  # the library's own errors: one line, nothing else
        assert len(err.splitlines()) == 1 and err.startswith("transferability "), err
        assert "error:" in err
    assert list(cwd.iterdir()) == [], "wrote into the working directory"
    after = _files_under(tmp_path.parent)
    changed = [p for p in before if after.get(p) != before[p]]
    written = [p for p in after.keys() - before.keys() if after[p] != ()]  # folders may appear
    assert changed == [] and written == [], f"a refused command wrote {changed + written}"
    assert seconds < 30, f"took {seconds:.1f}s to refuse"
    if check is not None:
        check(tmp_path)


# ---- API table -------------------------------------------------------------------------------
class _NaNModel(nn.Module):
    """A 3-class model whose outputs are all NaN."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 3)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


def _mlp() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("mlp", hidden=16).eval()


def _cnn() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("cnn", width=4).eval()


def _meta_mlp() -> nn.Module:
    with torch.device("meta"):  # a device other than the CPU, on any machine
        return create_model("mlp", hidden=16)


class _Oracle(nn.Module):
    """Classifies images of constant value: class k for values nearest ``values[k]``
    (logit_k = 2·m·v_k − v_k², m the mean pixel)."""

    def __init__(self, values):
        super().__init__()
        v = torch.tensor(values)
        self.fc = nn.Linear(1, len(values))
        with torch.no_grad():
            self.fc.weight.copy_(2 * v[:, None])
            self.fc.bias.copy_(-v**2)

    def forward(self, x):
        return self.fc(x.mean((1, 2, 3))[:, None])


def _constant_task(n: int, shift: int, name: str):
    """``n`` images per class of 3 classes; class c's pixels are near ``VALUES[c + shift]``,
    so the oracle is right on every image when ``shift`` is 0 and wrong on every one
    otherwise."""
    from transferability.data import ImageDataset

    y = torch.arange(3 * n) % 3
    noise = 0.01 * torch.rand(3 * n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return ImageDataset(torch.tensor(VALUES)[(y + shift) % 3].view(-1, 1, 1, 1) + noise, y,
                        name=name)


VALUES = [0.25, 0.5, 0.75]


def _images(n: int = 6, shape=(1, 28, 28), dtype=torch.float32) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0), dtype=dtype)


def _attack(name: str, model: nn.Module, x: torch.Tensor, **options) -> torch.Tensor:
    return create_attack(name, model, **{"eps": 0.1, **options})(x)


class _File:
    """An argument that is a malformed checkpoint file, made in the test's folder."""

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind} checkpoint>"


_GLOBAL_RNG = torch.get_rng_state()  # building the table leaves torch's generator alone
torch.manual_seed(0)
NO_LINEAR = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
LABELS = torch.arange(6) % 3

API_CASES = [
    # attacks: images that do not fit the model, NaN outputs, bad seeds and budgets
    *[pytest.param(_attack, (name, model(), _images(shape=shape)), {}, ValueError,
                   ["x:", f"{tuple(shape)}", "do not fit"],
                   id=f"{name}-{model.__name__[1:]}-{s}")
      for name in ("pgd", "fgsm", "mifgsm")
      for model, shape, s in ((_mlp, (3, 32, 32), "rgb32"), (_cnn, (3, 28, 28), "rgb"),
                              (_mlp, (1, 32, 32), "size"))],
    *[pytest.param(_attack, (name, _NaNModel(), _images()), {}, ValueError,
                   ["model:", "nan"], id=f"{name}-nan-model")
      for name in ("pgd", "fgsm", "mifgsm")],
    pytest.param(PGD, (_mlp(), 0.1), {"seed": -1}, ValueError, ["seed", "-1"],
                 id="pgd-seed-negative"),
    pytest.param(PGD, (_mlp(), 0.1), {"seed": 2**40}, ValueError, ["seed", str(2**40)],
                 id="pgd-seed-huge"),
    pytest.param(FGSM, (_mlp(), 0.1), {"seed": -1}, ValueError, ["seed"], id="fgsm-seed"),
    pytest.param(MIFGSM, (_mlp(), 0.1), {"seed": 2**40}, ValueError, ["seed"], id="mifgsm-seed"),
    pytest.param(PGD, (_mlp(), 0.1), {"seed": 1.5}, ValueError, ["seed"], id="pgd-seed-float"),
    pytest.param(PGD, (_mlp(), float("nan")), {}, ValueError, ["eps"], id="pgd-eps-nan"),
    pytest.param(PGD, (_mlp(), -0.1), {}, ValueError, ["eps"], id="pgd-eps-negative"),
    pytest.param(PGD, (_mlp(), 0.1), {"steps": 0}, ValueError, ["steps"], id="pgd-steps-0"),
    pytest.param(create_attack, ("deepfool", _mlp()), {"eps": 0.1}, ValueError,
                 ["attack", "'deepfool'"], id="attack-unknown"),
    pytest.param(_attack, ("pgd", _mlp(), _images() * 2), {}, ValueError, ["x:", "[0, 1]"],
                 id="pgd-out-of-range"),
    # NaN outputs name the model that produced them
    pytest.param(alpha, (_mlp(), _NaNModel(), _images()),
                 {"attack": AttackSpec("pgd", {"steps": 2})},
                 ValueError, ["to_model", "nan"], id="alpha-nan-to-model"),
    pytest.param(alpha, (_NaNModel(), _mlp(), _images()),
                 {"attack": AttackSpec("pgd", {"steps": 2})},
                 ValueError, ["from_model", "nan"], id="alpha-nan-from-model"),
    pytest.param(transfer_matrix, ({"good": _mlp()}, {"nan_victim": _NaNModel()}, _images(),
                                   LABELS), {"attack": AttackSpec("pgd", {"eps": 0.1, "steps": 2})},
                 ValueError, ["nan_victim", "nan"], id="transfer-matrix-nan-victim"),
    pytest.param(transfer_matrix, ({"nan_surrogate": _NaNModel()}, {"good": _mlp()},
                                   _images(), LABELS), {"attack": AttackSpec("pgd", {"eps": 0.1})},
                 ValueError, ["nan_surrogate", "nan"], id="transfer-matrix-nan-surrogate"),
    pytest.param(extract, (_NaNModel(), _images()), {}, ValueError, ["model", "nan"],
                 id="extract-nan"),
    pytest.param(predict, (_NaNModel(), _images()), {}, ValueError, ["model", "nan"],
                 id="predict-nan"),
    pytest.param(extract, (_mlp(), _images(shape=(3, 32, 32))), {}, ValueError,
                 ["x:", "do not fit"], id="extract-rgb"),
    # features: no penultimate layer, unknown layer
    pytest.param(extract, (NO_LINEAR, _images()), {}, ValueError, ["layer", "nn.Linear"],
                 id="extract-no-linear"),
    pytest.param(extract, (_mlp(), _images()), {"layer": "nope"}, ValueError,
                 ["layer", "'nope'"], id="extract-unknown-layer"),
    pytest.param(extract, (_mlp(), _images()), {"layer": ""}, ValueError, ["layer"],
                 id="extract-empty-layer"),
    # checkpoints: every malformed kind is a CheckpointError (a ValueError)
    *[pytest.param(load_checkpoint, (_File(kind),), {}, CheckpointError,
                   {"missing": ["not found"], "folder": ["not found"],
                    "pickle_payload": ["refusing", "getattr"],
                    "huge_classes": ["do not match", "10000000"],
                    "huge_hidden": ["do not match", "1000000000"],
                    "no_meta": ["metadata"], "meta_list": ["metadata"], "meta_int": ["metadata"],
                    "meta_bad_json": ["metadata"], "state_list": ["state_dict"],
                    "state_not_tensors": ["state_dict"], "unknown_arch": ["'vgg'"],
                    "classes_str": ["num_classes"], "arch_kwargs_list": ["arch_kwargs"],
                    "plain_state_dict": ["not a transferability checkpoint"],
                    }.get(kind, ["cannot read checkpoint", "corrupt"]),
                   id=f"load-checkpoint-{kind}") for kind in CKPT_KINDS],
    # training and models
    pytest.param(fit, (_mlp(), (_images(), LABELS)), {"epochs": 2.5}, ValueError, ["epochs"],
                 id="fit-epochs-float"),
    pytest.param(fit, (_mlp(), (_images(), LABELS)), {"batch_size": 0}, ValueError,
                 ["batch_size"], id="fit-batch-size-0"),
    pytest.param(fit, (_mlp(), (_images(), LABELS)), {"lr": float("nan")}, ValueError,
                 ["lr"], id="fit-lr-nan"),
    pytest.param(fit, (_mlp(), (_images(), LABELS)), {"seed": -1}, ValueError, ["seed"],
                 id="fit-seed-negative"),
    pytest.param(create_model, ("cnn",), {"num_classes": 2.5}, ValueError, ["num_classes"],
                 id="create-model-classes-float"),
    pytest.param(create_model, ("cnn",), {"num_classes": 0}, ValueError, ["num_classes"],
                 id="create-model-classes-0"),
    pytest.param(create_model, ("cnn",), {"nonsense": 1}, ValueError,
                 ["arch_kwargs", "nonsense"], id="create-model-unknown-kwarg"),
    pytest.param(create_model, ("vgg",), {}, ValueError, ["'vgg'"], id="create-model-unknown"),
    # zoo spec names
    *[pytest.param(load_spec, ({"models": [{"name": name, "arch": "mlp", "data": "digits"}]},),
                   {}, ValueError, ["models[0].name"], id=f"load-spec-name-{i}")
      for i, name in enumerate(["../x", "a/b", "/abs", "", ".hidden", "a" * 101, "a\0b",
                                "..", "x y", 5, None, ["a"]])],
    pytest.param(load_spec, ({"models": [{"name": "m", "arch": "mlp",
                                          "data": {"dataset": "digits", "n_per_class": -1}}]},),
                 {}, ValueError, ["models[0].data.n_per_class"], id="load-spec-data"),
    pytest.param(load_spec, ({"models": [{"name": "m", "arch": "mlp",
                                          "data": {"mixture": ["fonts", "nope"], "k": 3}}]},),
                 {}, ValueError, ["models[0].data.mixture[1]", "'nope'"],
                 id="load-spec-mixture-part"),
    # validation before work: models on two devices, more per class than the data have
    pytest.param(transfer_matrix, ({"cpu_model": _mlp()}, {"meta_model": _meta_mlp()},
                                   _images(), LABELS), {"attack": AttackSpec("fgsm", {"eps": 0.1})},
                 ValueError, ["different devices", "cpu_model is on cpu", "meta_model is on meta"],
                 id="transfer-matrix-devices"),
    pytest.param(alpha, (_mlp(), _meta_mlp(), _images()), {}, ValueError,
                 ["different devices", "from_model", "to_model"], id="alpha-devices"),
    pytest.param(per_class, (_constant_task(2, 0, "tiny"), 3), {}, ValueError,
                 ["n:", "'tiny'", "largest value that works is 2"], id="per-class-above-data"),
    pytest.param(dataset_from_spec, ({"dataset": "digits", "n_per_class": 500},), {},
                 ValueError, ["n_per_class", "500", "largest value that works is 139"],
                 id="spec-n-per-class-above-data"),
    pytest.param(describe_dataset, ({"mixture": ["digits", "digits"], "k": 11},), {},
                 ValueError, ["spec:", "k:", "11"], id="describe-dataset-k"),
    pytest.param(adv_knowledge_study, (_Oracle(VALUES), {"s": _mlp()},
                                       _constant_task(8, 0, "t/train"),
                                       _constant_task(2, 0, "t/test")), {"alpha_per_class": 3},
                 ValueError, ["alpha_per_class", "'t/test'", "largest value that works is 2"],
                 id="study-alpha-per-class-above-test"),
    pytest.param(adv_knowledge_study, (_Oracle(VALUES), {"s": _mlp()},
                                       _constant_task(8, 1, "t/train"),
                                       _constant_task(2, 0, "t/test")),
                 {"alpha_per_class": 2, "shots": 2},
                 ValueError, ["reference:", "none of the 6 target images", "α is undefined"],
                 id="study-reference-never-right"),
    pytest.param(adv_knowledge_study, (_Oracle(VALUES[:2]), {"s": _mlp()},
                                       _constant_task(8, 0, "t/train"),
                                       _constant_task(2, 0, "t/test")),
                 {"alpha_per_class": 2, "shots": 2},
                 ValueError, ["reference:", "2 outputs", "3 classes"],
                 id="study-reference-too-few-outputs"),
    pytest.param(adv_knowledge_study, (_Oracle(VALUES), {"s": _mlp()},
                                       _constant_task(8, 0, "t/train"),
                                       _constant_task(2, 0, "t/test")),
                 {"alpha_per_class": 2, "shots": 2, "layer": "nope"}, ValueError,
                 ["layer", "'nope'"],
                 id="study-unknown-layer"),
    pytest.param(adv_knowledge_study, (_Oracle(VALUES), {"s": _meta_mlp()},
                                       _constant_task(8, 0, "t/train"),
                                       _constant_task(2, 0, "t/test")),
                 {"alpha_per_class": 2, "shots": 2}, ValueError,
                 ["different devices", "reference is on cpu", "s is on meta"],
                 id="study-devices"),
    pytest.param(rank_sources, ({"s": _mlp()}, _constant_task(8, 0, "t/train")),
                 {"reference": _Oracle(VALUES), "alpha_per_class": 9}, ValueError,
                 ["alpha_per_class", "'t/train'", "largest value that works is 8"],
                 id="rank-alpha-per-class-above-data"),
]
torch.set_rng_state(_GLOBAL_RNG)


@pytest.mark.parametrize(("func", "args", "kwargs", "exc", "words"), API_CASES)
def test_api_bad_input(func, args, kwargs, exc, words, tmp_path):
    args = [_bad_checkpoint(a.kind, tmp_path) if isinstance(a, _File) else a for a in args]
    with pytest.raises(exc) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert not (tmp_path / "PWNED").exists(), "the pickled payload ran"


def test_tiny_target_finishes_with_undefined_statistics_shown_as_such(tmp_path):
    """On a tiny target no test image may be classified right by both models of a pair:
    the both_correct transfer rate is then 0/0. The study finishes and shows it as n/a
    with the reason instead of failing after the work (here the reference is right on
    every train image and wrong on every test image, so both directions are 0/0)."""
    from transferability.jobs import ResultStore

    train, test = _constant_task(8, 0, "t/train"), _constant_task(2, 1, "t/test")
    sources = {"A": _mlp(), "B": _cnn()}
    with ResultStore(tmp_path / "results.sqlite") as store:
        result = adv_knowledge_study(_Oracle(VALUES), sources, train, test, alpha_per_class=2,
                                     shots=2, repeats=2, attack=AttackSpec("pgd", {"steps": 2}),
                                     matrix_attack=AttackSpec("pgd", {"steps": 2}), store=store)
    assert [r["source"] for r in result.reverse] == ["A", "B"]
    for row in result.reverse:
        assert np.isnan(row["adv_reference_to_source"]) and np.isnan(row["adv_source_to_reference"])
        assert np.isfinite(row["model_fit"])
    for c in result.reverse_correlations:
        assert np.isnan(c["spearman"]) and c["top1"] is None
        assert "is undefined for A, B" in c["note"] and "0/0" in c["note"]
    text = format_result(result)
    assert "model_fit vs adv_source_to_reference: n/a, adv_source_to_reference is undefined " \
           "for A, B" in text
    assert "nan" not in text.lower().replace("n/a", "")
    again = type(result).from_dict(result.to_dict())  # the undefined values survive a round trip
    assert again.reverse_correlations[0]["note"] == result.reverse_correlations[0]["note"]
    # a predictor's undefined values are named too, and the defined ones still correlate
    from transferability.studies.adv_knowledge import _agreement

    rows = _agreement({"good": [0.1, 0.2, 0.3], "bad": [0.1, float("nan"), 0.3]},
                      [1.0, 2.0, 3.0], "truth", ["A", "B", "C"], seed=0)
    assert rows[0]["spearman"] == pytest.approx(1.0) and "note" not in rows[0]
    assert np.isnan(rows[1]["spearman"]) and rows[1]["note"] == "bad is undefined for B"


@pytest.mark.parametrize("name", ["pgd", "fgsm", "mifgsm", "bim", "di", "mi-di"])
def test_attacks_take_float64_images(name):
    """Images in another float dtype are converted to the model's dtype (float32)."""
    model, x = _cnn(), _images(dtype=torch.float64)
    options = {} if name == "fgsm" else {"steps": 3}
    x_adv = create_attack(name, model, eps=0.1, seed=0, **options)(x)
    assert x_adv.dtype == torch.float32 and x_adv.shape == x.shape
    assert (x_adv - x.float()).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_pickled_payload_is_live_but_never_executed(tmp_path):
    """The payload of the ``pickle_payload`` checkpoint does run under an unsafe load (so
    the table's case is meaningful); the library refuses it without running it."""
    path = _bad_checkpoint("pickle_payload", tmp_path)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert (tmp_path / "PWNED").exists()


@pytest.mark.xdist_group("serial")  # timing/processes: kept off the other workers
def test_huge_num_classes_is_refused_without_allocating(tmp_path):
    """Metadata claiming 10⁷ classes (a 5 GB head) is compared on the meta device first."""
    path = _bad_checkpoint("huge_classes", tmp_path)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # < 0.5 GB


# ---- files: concurrency, full disks, corrupt caches ------------------------------------------
WRITER = """
import sys, time
from pathlib import Path
import torch
from transferability.models import create_model, save_checkpoint
torch.set_num_threads(1)
path, folder, wid, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = create_model("mlp", hidden=64)
(folder / f"ready-{wid}").touch()
deadline = time.monotonic() + 60
while not (folder / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.005)
for i in range(n):
    fill = 1000 * wid + i
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(fill)
    save_checkpoint(model, path, fill=fill)
"""


@pytest.mark.xdist_group("serial")  # timing/processes: kept off the other workers
def test_concurrent_writers_and_a_reader_see_only_whole_checkpoints(tmp_path):
    """Three processes save to one path while this one loads it: every load is a whole,
    consistent checkpoint and no temporary file is left behind."""
    folder = tmp_path / "ckpts"
    folder.mkdir()
    path = folder / "model.pt"
    model = create_model("mlp", hidden=64)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(-1)
    save_checkpoint(model, path, fill=-1)  # so the reader never meets a missing file
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(tmp_path),
                                 str(w), "30"], stderr=subprocess.PIPE, text=True)
               for w in range(3)]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{w}").exists() for w in range(3)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in writers), \
                [p.communicate()[1] for p in writers if p.poll() is not None]
            time.sleep(0.01)
        (tmp_path / "go").touch()
        reads, errors, fills = 0, [], set()
        while any(p.poll() is None for p in writers) and time.monotonic() < deadline:
            try:
                loaded = load_checkpoint(path)
                fill = loaded.meta["fill"]
                if not all(bool((p == fill).all()) for p in loaded.parameters()):
                    errors.append(f"weights of two writes mixed (meta fill {fill})")
                fills.add(fill)
            except Exception as exc:  # any failure to read is what this test is about
                errors.append(f"{type(exc).__name__}: {exc}")
            reads += 1
    finally:
        for p in writers:
            if p.poll() is None:
                p.kill()
    stderr = [p.communicate()[1] for p in writers]
    assert [p.returncode for p in writers] == [0, 0, 0], stderr
    assert errors == [], errors[:3]
    assert reads >= 5 and len(fills) >= 2, (reads, fills)
    assert load_checkpoint(path).meta["fill"] % 1000 == 29  # the last write of some writer
    assert sorted(os.listdir(folder)) == ["model.pt"], os.listdir(folder)


FULL_DISK = """
import os, resource, sys
from transferability.models import create_model, save_checkpoint
model = create_model("cnn")
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
try:
    save_checkpoint(model, sys.argv[1])
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
else:
    print("saved")
"""


def test_full_disk_is_a_one_line_storage_error(tmp_path):
    """``ulimit -f`` (or a full disk) while saving: a StorageError naming the file, and
    neither the target nor a temporary file is left (torch reports EFBIG as RuntimeError)."""
    folder = tmp_path / "models"
    target = folder / "big.pt"
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(target)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("StorageError: cannot write "), done.stdout
    assert str(target) in lines[0] and "File too large" in lines[0]
    assert not target.exists() and os.listdir(folder) == []


@pytest.fixture
def zoo_copy(shared_zoo, tmp_path):
    """A copy of the shared zoo's cache, to damage."""
    import shutil

    shutil.copytree(shared_zoo.cache, tmp_path / "cache")
    return build_zoo(shared_zoo.spec, tmp_path / "cache")


def test_corrupt_cached_checkpoint_is_moved_aside_and_retrained(zoo_copy, shared_zoo, caplog):
    assert zoo_copy.cached == ["m"]
    path = zoo_copy.path("m")
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    with caplog.at_level(logging.WARNING, logger="transferability"):
        rebuilt = build_zoo(shared_zoo.spec, zoo_copy.cache_dir)
    assert rebuilt.trained == ["m"] and rebuilt.cached == []
    aside = list(path.parent.glob(f"{path.name}.corrupt-*"))
    assert len(aside) == 1 and any("corrupt" in r.getMessage() for r in caplog.records)
    x = _images()
    assert torch.equal(load_checkpoint(path)(x), shared_zoo.model(x))  # seeded: same weights

