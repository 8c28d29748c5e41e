"""The device policy: --device/--precision, run_jobs(device=), streamed data, autocast.

Without a GPU, a fake one-GPU machine (``fake_gpu``) resolves ``cuda`` and records every
placement instead of moving anything, and a global forward hook records the device policy
under which every module runs: a study with ``--device cuda`` must place every model it
builds, receives or loads on the GPU, and run every job and forward pass under it.
"""

import copy
import dataclasses
import json

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from transferability import devices
from transferability.attacks import PGD
from transferability.cli import main
from transferability.data import ImageDataset, stream
from transferability.devices import (
    check_precision,
    forward_precision,
    place,
    resolve_device,
    use_precision,
)
from transferability.features import extract, predict
from transferability.jobs import dask as jobs_dask
from transferability.jobs import run as jobs_run
from transferability.jobs.graph import get_job_kind

CUDA0 = torch.device("cuda", 0)


# ---- devices and precisions -----------------------------------------------------------------
def test_resolve_device_on_a_cpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for bad, words in (("cuda", "no CUDA GPU"), ("cuda:7", "no CUDA GPU"),
                       ("mps", "Metal"), ("tpu", "expected auto"), ("gpu:0", "expected auto")):
        with pytest.raises(ValueError, match=words) as info:
            resolve_device(bad, "--device")
        assert str(info.value).startswith("--device: ")


def test_resolve_device_on_a_one_gpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("auto") == resolve_device("cuda") == resolve_device("cuda:0") == CUDA0
    with pytest.raises(ValueError, match=r"has 1 GPU\(s\): cuda:0..cuda:0"):
        resolve_device("cuda:7")


def test_precisions():
    assert check_precision("bf16", "cpu") == "bf16" and check_precision("fp16", "cuda") == "fp16"
    with pytest.raises(ValueError, match="precision: fp16 needs a GPU"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="expected one of fp32, bf16, fp16"):
        check_precision("int8", "cpu")
    with torch.no_grad():
        assert isinstance(forward_precision("cpu", "fp32"), type(forward_precision("cpu")))
        with forward_precision("cpu", "bf16"):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with forward_precision("cpu", "bf16"):  # gradients recorded: never autocast
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_use_precision_nests_and_restores_and_no_device_is_ambient():
    assert devices.current_precision() == "fp32"
    with use_precision("bf16", "cpu"):
        assert devices.current_precision() == "bf16"
        with use_precision("fp32"):
            assert devices.current_precision() == "fp32"
        with use_precision(None):
            assert devices.current_precision() == "bf16"
    assert devices.current_precision() == "fp32"
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        with use_precision("fp16", "cpu"):
            pass
    assert not hasattr(devices, "current_device") and not hasattr(devices, "use_device")


class CpuOnly(nn.Module):
    """A model with an operation that cannot leave the CPU."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def _apply(self, fn, recurse=True):
        raise RuntimeError("custom_op is only implemented for CPU")


def test_a_model_that_cannot_move_is_named():
    with pytest.raises(ValueError, match=r"^my-model: cannot move CpuOnly to cpu .*custom_op"):
        place(CpuOnly(), "cpu", "my-model")


# ---- the command line ---------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--device", "cuda"], "--device: cuda asked for, but no CUDA GPU"),
    (["--device", "tpu"], "--device: expected auto, cpu"),
    (["--precision", "fp16", "--device", "cpu"], "--precision: fp16 needs a GPU"),
])
def test_cli_refuses_devices_before_any_work(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main(["rank", "--target", "digits", "--sources", "demo", "--out", str(out),
                 *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["study", "theory", "--n", "20", "--device", "cuda"],
    ["study", "adv-knowledge", "--precision", "fp16", "--device", "cpu"],
    ["benchmark", "--quick", "--precision", "fp16", "--device", "cpu"],
    ["demo", "--quick", "--precision", "fp16", "--device", "cpu"],
])
def test_study_commands_refuse_devices_and_precisions_before_any_work(argv, tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not out.exists()
    assert ("--device: cuda asked for" if "cuda" in argv else "--precision: fp16 needs") in err


def test_theory_check_runs_on_the_device_asked_for(tmp_path):
    import csv

    from transferability.adversarial import theory_check

    seen = set()
    handle = nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.add(args[0].device.type))
    try:
        rows = theory_check((0.5,), n=20, device="cpu")
    finally:
        handle.remove()
    assert seen == {"cpu"}
    assert main(["study", "theory", "--scales", "0.5", "--n", "20", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    with open(tmp_path / "theory.csv") as f:
        written = next(csv.DictReader(f))
    assert float(written["alpha1"]) == pytest.approx(rows[0].alpha1, rel=1e-6)


def test_features_jobs_honour_and_key_the_precision(pixels, tmp_path):
    from transferability.jobs import ResultStore
    from transferability.studies.adv_knowledge import stored_outputs

    raw, y = pixels
    data = ImageDataset(raw.float() / 255, y)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 3))
    with ResultStore(tmp_path / "store.sqlite") as store:
        fp32 = stored_outputs(store)("m", model, data)
        with use_precision("bf16"):  # a command's --precision bf16
            bf16 = stored_outputs(store)("m", model, data)
        again = stored_outputs(store)("m", model, data)  # loaded: the fp32 job's result
        keys = [r.config.get("precision") for r in store.records(kind="features")]
    assert torch.equal(bf16.logits, extract(model, data.x, precision="bf16").logits)
    assert torch.equal(fp32.logits, extract(model, data.x).logits)
    assert not torch.equal(bf16.logits, fp32.logits) and torch.equal(again.logits, fp32.logits)
    assert sorted(keys, key=str) == [None, "bf16"]  # fp32 keys hold no precision, as before


def test_cli_default_device_comes_from_the_environment(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("TRANSFERABILITY_DEVICE", "cuda")
    assert main(["probe", "--target", "digits", "--sources", "demo"]) == 2
    assert "--device ($TRANSFERABILITY_DEVICE): cuda asked for" in capsys.readouterr().err
    monkeypatch.delenv("TRANSFERABILITY_DEVICE")
    assert main(["probe", "--target", "digits", "--sources", "demo", "--precision",
                 "fp16"]) == 2  # auto: the CPU here
    assert "--precision: fp16 needs a GPU" in capsys.readouterr().err


def test_cli_refuses_a_gpu_index_the_machine_lacks(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert main(["attack", "--surrogates", "demo", "--victims", "demo", "--dataset", "digits",
                 "--eps", "0.1", "--device", "cuda:7"]) == 2
    assert "--device: cuda:7 asked for, but this machine has 1 GPU(s)" in capsys.readouterr().err


def test_cli_names_a_model_that_cannot_move(tmp_path, capsys):
    (tmp_path / "bad_model.py").write_text(
        "from tests.test_devices import CpuOnly\n\ndef build():\n    return CpuOnly()\n")
    assert main(["probe", "--target", "digits", "--sources",
                 f"py:{tmp_path / 'bad_model.py'}:build", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "build: cannot move CpuOnly to cpu" in err and len(err.strip().splitlines()) == 1


# ---- a study on a (fake) GPU ---------------------------------------------------------------
@pytest.fixture
def fake_gpu(monkeypatch):
    """A one-GPU machine where placing a model records it instead of moving it; returns
    what was seen: placements, and the device every job was given."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    seen = {"placed": [], "jobs": [], "unplaced_inputs": []}

    def record_place(model, device, name="model"):
        seen["placed"].append((id(model), name, torch.device(device)))
        return model

    for module in ("transferability.jobs.execute", "transferability.zoo",
                   "transferability.model_args"):
        monkeypatch.setattr(f"{module}.place", record_place)
    original = jobs_run.execute

    def recording_execute(kind, config, inputs, device=None):
        def record(inputs):
            placed = {i for i, _, d in seen["placed"] if d == CUDA0}
            seen["unplaced_inputs"] += [(kind.name, n) for n, o in inputs.items()
                                        if isinstance(o.artifact, nn.Module)
                                        and id(o.artifact) not in placed]
            seen["jobs"].append((kind.name, torch.device(device)))

        def fn(config, inputs):
            record(inputs)
            return kind.fn(config, inputs)

        def builds(config, inputs, device=None):  # a kind that builds models gets the device
            record(inputs)
            seen["jobs"][-1] = (kind.name, device)
            return kind.fn(config, inputs, device=device)
        wrapped = builds if kind.builds_models else fn
        return original(dataclasses.replace(kind, fn=wrapped), config, inputs, device)

    monkeypatch.setattr(jobs_run, "execute", recording_execute)
    yield seen


TINY = """
train: {epochs: 1, batch_size: 64}
models:
  - {name: mlp-digits, arch: mlp, data: {dataset: digits, n_per_class: 30}}
  - {name: lenet-fonts, arch: lenet, data: {dataset: fonts, n_per_class: 30}}
"""


def test_a_study_keeps_every_model_on_the_run_device_and_resumes_the_same(
        fake_gpu, tmp_path, capsys):
    (tmp_path / "zoo.yaml").write_text(TINY)
    zoo = str(tmp_path / "zoo.yaml")

    def study(out):
        return main(["study", "adv-knowledge", "--device", "cuda", "--target", "digits",
                     "--sources", zoo, "--reference", f"{zoo}:mlp-digits", "--steps", "2",
                     "--alpha-per-class", "2", "--shots", "2", "--repeats", "1",
                     "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / out)])

    assert study("first") == 0
    kinds = {k for k, _ in fake_gpu["jobs"]}
    assert kinds == {"train", "features", "knowledge_scores", "probe", "reference_attack",
                     "adversarial_scores", "transfer_row", "model_fit", "adv_knowledge_study",
                     "reference_accuracy"}
    assert {d for _, d in fake_gpu["jobs"]} == {CUDA0}  # every job was given the device
    assert fake_gpu["unplaced_inputs"] == []  # every model a job received was placed
    built = {name for _, name, d in fake_gpu["placed"] if d == CUDA0}
    assert {"mlp-digits", "lenet-fonts"} <= built  # the train jobs built them on the GPU
    assert {d for *_, d in fake_gpu["placed"]} == {CUDA0}

    fake_gpu["placed"].clear()
    fake_gpu["jobs"].clear()
    assert study("again") == 0  # everything from the store
    assert fake_gpu["jobs"] == []
    loaded = {name for _, name, d in fake_gpu["placed"] if d == CUDA0}
    assert {"mlp-digits", "lenet-fonts"} <= loaded  # loaded models go to the run's device
    first, again = ((tmp_path / o / "adv_knowledge.json").read_text() for o in ("first", "again"))
    assert json.loads(first) == json.loads(again)


def test_run_jobs_gives_computed_and_loaded_artifacts_the_same_placement(tmp_path):
    from transferability.jobs import Job, ResultStore, given, run_jobs

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 3))
    data = ImageDataset(torch.rand(6, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2]))
    job = Job("features", {"layer": None, "layer_input": False},
              {"model": given(model), "data": given(data)})
    with ResultStore(tmp_path / "s.sqlite") as store:
        fresh = run_jobs([job], store, device="cpu").artifact(job)
        loaded = run_jobs([job], store, device="cpu").artifact(job)
    assert fresh.keys() == loaded.keys() == {"features", "logits", "labels"}
    for k in fresh:
        assert fresh[k].device == loaded[k].device == torch.device("cpu")
        assert torch.equal(fresh[k], loaded[k])


# ---- Dask on GPU machines -----------------------------------------------------------------
def test_dask_gives_gpu_jobs_a_gpu_worker_and_cpu_jobs_the_others():
    pytest.importorskip("distributed")
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert jobs_dask.placement(get_job_kind("train"), cuda) == ("cuda", {"GPU": 1})
    assert jobs_dask.placement(get_job_kind("features"), cuda) == ("cuda", {"GPU": 1})
    for kind in ("knowledge_scores", "probe", "adv_knowledge_study", "benchmark"):
        assert jobs_dask.placement(get_job_kind(kind), cuda) == ("cpu", {})
    assert jobs_dask.placement(get_job_kind("train"), cpu) == ("cpu", {})
    assert jobs_dask.placement(get_job_kind("train"), None) == (None, {})
    specs = jobs_dask.worker_specs(workers=2, gpus=2)
    gpu = {n: s["options"] for n, s in specs.items() if n.startswith("gpu")}
    cpu = {n: s["options"] for n, s in specs.items() if n.startswith("cpu")}
    assert [o["env"]["CUDA_VISIBLE_DEVICES"] for o in gpu.values()] == ["0", "1"]
    assert all(o["resources"] == {"GPU": 1} and o["nthreads"] == 1 for o in gpu.values())
    assert len(cpu) == 2 and all(o["env"] == {"CUDA_VISIBLE_DEVICES": ""} and
                                 o["resources"] == {} for o in cpu.values())


# ---- streamed data ------------------------------------------------------------------------
class Pixels(Dataset):
    """uint8 images read one at a time (as an image folder would give them)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


@pytest.fixture
def pixels():
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8, generator=g),
            torch.arange(10) % 3)


def test_stream_reads_any_dataset_the_same(pixels):
    raw, y = pixels
    as_float = raw.float() / 255
    sources = [as_float, ImageDataset(as_float, y), Pixels(raw, y), raw]
    batches = [list(stream(s, batch_size=4)) for s in sources]
    for got in batches:
        assert [len(b[0]) for b in got] == [4, 4, 2]
        assert torch.equal(torch.cat([b[0] for b in got]), as_float)
    assert torch.equal(torch.cat([b[1] for b in batches[1]]), y)
    assert torch.equal(torch.cat([b[1] for b in batches[2]]), y)
    assert batches[0][0][1] is None
    (x, _), = stream(as_float[:2], batch_size=8, channels_last=True, dtype=torch.float64)
    assert x.dtype == torch.float64 and x.is_contiguous(memory_format=torch.channels_last)


def test_stream_checks_float_images_once_at_the_end(pixels):
    bad = pixels[0].float() / 255
    bad[7, 0, 0, 0] = 1.5
    seen = []
    with pytest.raises(ValueError, match=r"^x: values must lie in \[0, 1\].*1\.5\]"):
        for xb, _ in stream(bad, batch_size=4):
            seen.append(len(xb))
    assert seen == [4, 4, 2]
    bad[7, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x: contains NaN"):
        list(stream(bad, batch_size=4))
    with pytest.raises(ValueError, match="x: expected float images in \\[0, 1\\] or uint8"):
        list(stream(pixels[0].long()))
    with pytest.raises(ValueError, match="expected an image tensor, an ImageDataset"):
        list(stream([1, 2, 3]))


def test_extract_and_predict_stream_a_dataset_with_workers(pixels):
    raw, y = pixels
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 3))
    reference = extract(model, raw.float() / 255, y, batch_size=3)
    streamed = extract(model, Pixels(raw, y), batch_size=3, workers=1)
    assert torch.equal(streamed.labels, y)  # the dataset's own labels
    assert torch.allclose(streamed.features, reference.features)
    assert torch.allclose(streamed.logits, reference.logits)
    assert torch.allclose(predict(model, Pixels(raw, y), batch_size=4), reference.logits)


def test_stream_bounds_the_bytes_read_ahead(pixels):
    from transferability.data.loader import _read_ahead

    raw, y = pixels  # items of 784 bytes (uint8 1×28×28) and an int label
    batch = 784 * 4
    assert _read_ahead(Pixels(raw, y), 4, 3, ahead_bytes=1 << 30) == (3, 2)
    assert _read_ahead(Pixels(raw, y), 4, 3, ahead_bytes=5 * batch) == (3, 1)
    assert _read_ahead(Pixels(raw, y), 4, 3, ahead_bytes=2 * batch + 1) == (2, 1)
    assert _read_ahead(Pixels(raw, y), 4, 3, ahead_bytes=1) == (1, 1)
    assert _read_ahead(Pixels(raw.float(), y), 4, 8, ahead_bytes=8 * batch) == (2, 1)
    assert _read_ahead(Pixels(raw, y), 4, 0) == (0, None)
    tight = list(stream(Pixels(raw, y), batch_size=4, workers=3, ahead_bytes=1))
    assert torch.equal(torch.cat([b for b, _ in tight]), raw.float() / 255)
    with pytest.raises(ValueError, match="ahead_bytes: expected an integer >= 1"):
        list(stream(Pixels(raw, y), ahead_bytes=0))


def test_image_folder_items_are_uint8_and_stream_like_the_loaded_set(tmp_path):
    from PIL import Image

    from transferability.data.user import ImageFolder

    g = torch.Generator().manual_seed(0)
    pix = torch.randint(0, 256, (6, 12, 10, 3), dtype=torch.uint8, generator=g)
    for i, a in enumerate(pix):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(a.numpy(), "RGB").save(tmp_path / f"c{i % 2}" / f"{i}.png")
    folder = ImageFolder(tmp_path)
    x, label = folder[1]  # sorted: c0/0, c0/2, c0/4, c1/1, ...
    assert x.dtype == torch.uint8 and torch.equal(x, pix[2].permute(2, 0, 1)) and label == 0
    loaded = folder.load()
    assert loaded.x.dtype == torch.float32 and torch.equal(loaded.x[1], x.float() / 255)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 8, 2))
    streamed = extract(model, folder, batch_size=4, workers=1)
    reference = extract(model, loaded.x, loaded.y, batch_size=4)
    assert torch.equal(streamed.labels, loaded.y)
    assert torch.equal(streamed.logits, reference.logits)


def test_bf16_only_for_forward_passes(pixels):
    raw, y = pixels
    x = raw.float() / 255
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 3))
    fp32 = predict(model, x)
    bf16 = predict(model, x, precision="bf16")
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert torch.allclose(bf16, fp32, atol=0.05, rtol=0.05)
    with use_precision("bf16"):  # the block's precision, by default
        assert torch.equal(predict(model, x), bf16)
        assert torch.equal(extract(model, x).logits, bf16)
        adv = PGD(model, 0.1, steps=3, random_start=False)(x, y)
    # attacks' gradients stay fp32 whatever the policy
    assert torch.equal(adv, PGD(model, 0.1, steps=3, random_start=False)(x, y))


# ---- on a real GPU ------------------------------------------------------------------------
@pytest.mark.cuda
def test_cuda_stream_extract_and_attack_match_the_cpu(pixels):
    raw, y = pixels
    x = raw.float() / 255
    torch.manual_seed(0)
    cpu = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 26 * 26, 3)).eval()
    gpu = place(copy.deepcopy(cpu), "cuda")
    assert gpu[0].weight.is_contiguous(memory_format=torch.channels_last)
    batches = list(stream(Pixels(raw, y), "cuda", batch_size=4, workers=1))
    assert all(b.is_cuda and lab.is_cuda for b, lab in batches)
    # CUDA divides by 255 through a reciprocal: the same pixels to within one float32 ulp
    assert torch.allclose(torch.cat([b for b, _ in batches]).cpu(), x, rtol=0, atol=6e-8)
    ref, out = extract(cpu, x, y), extract(gpu, Pixels(raw, y), batch_size=4)
    assert out.features.device.type == "cpu"
    assert torch.allclose(out.logits, ref.logits, atol=1e-3, rtol=1e-3)
    bf16 = extract(gpu, x, precision="bf16").logits
    assert torch.allclose(bf16, ref.logits, atol=0.05, rtol=0.05)
    fp16 = predict(gpu, x, precision="fp16")
    assert torch.allclose(fp16, ref.logits, atol=0.05, rtol=0.05)
    adv_cpu = PGD(cpu, 0.1, steps=5, random_start=False)(x, y)
    adv_gpu = PGD(gpu, 0.1, steps=5, random_start=False)(x.cuda(), y.cuda())
    assert adv_gpu.is_cuda and (adv_gpu.cpu() - x).abs().max() <= 0.1 + 1e-6
    # the same up to sign flips of near-zero gradients (docs/scaling.md): most pixels agree
    assert ((adv_gpu.cpu() - adv_cpu).abs() > 1e-4).float().mean() < 0.5


@pytest.mark.cuda
def test_cuda_run_jobs_resumes_to_the_same_objects(tmp_path):
    from transferability.jobs import Job, ResultStore, run_jobs
    from transferability.zoo import entry_config, load_spec

    entry, = load_spec({"train": {"epochs": 1, "batch_size": 64},
                        "models": [{"name": "mlp-digits", "arch": "mlp",
                                    "data": {"dataset": "digits", "n_per_class": 20}}]})
    job = Job("train", entry_config(entry), label="mlp-digits")
    with ResultStore(tmp_path / "s.sqlite") as store:
        fresh = run_jobs([job], store, device="cuda")
        loaded = run_jobs([job], store, device="cuda")
    assert loaded.loaded == [job.key]
    a, b = fresh.artifact(job), loaded.artifact(job)
    assert next(a.parameters()).is_cuda and next(b.parameters()).is_cuda
    assert json.dumps(fresh.value(job), sort_keys=True) == \
        json.dumps(loaded.value(job), sort_keys=True)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(v, w), k


@pytest.mark.cuda
def test_cuda_cli_rank_on_the_gpu(tmp_path, capsys):
    (tmp_path / "zoo.yaml").write_text(TINY)
    zoo = str(tmp_path / "zoo.yaml")
    for device in ("cpu", "cuda"):
        assert main(["rank", "--target", "digits", "--sources", zoo, "--estimators", "leep",
                     "logme", "--device", device, "--out", str(tmp_path / device)]) == 0
    cpu, gpu = (json.loads((tmp_path / d / "rank.json").read_text()) for d in ("cpu", "cuda"))
    for a, b in zip(cpu["rows"], gpu["rows"], strict=True):
        assert a["source"] == b["source"]
        assert a["logme"] == pytest.approx(b["logme"], rel=1e-3, abs=1e-3)


def test_create_model_places_nothing(fake_gpu):
    """Models are placed by ``model_args`` and the job runner only: ``create_model`` leaves
    a model where torch builds it (the meta device of up-front shape checks included)."""
    from transferability.models import create_model

    with torch.device("meta"):
        model = create_model("mlp")
    assert next(model.parameters()).is_meta
    assert next(create_model("mlp").parameters()).device.type == "cpu"
    assert fake_gpu["placed"] == []


@pytest.mark.cuda
def test_cuda_predict_on_images_already_on_the_gpu(pixels):
    """An attack's output lives on the GPU: predicting on it slices it in place (pinning a
    CUDA tensor raises)."""
    raw, _ = pixels
    x = raw.float() / 255
    torch.manual_seed(0)
    cpu = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 3)).eval()
    gpu = place(copy.deepcopy(cpu), "cuda")
    out = predict(gpu, x.cuda(), batch_size=4)
    assert out.is_cuda and torch.allclose(out.cpu(), predict(cpu, x), atol=1e-5)
    assert torch.allclose(predict(gpu, ImageDataset(x.cuda(), torch.zeros(len(x)).long()
                                                    .cuda()), batch_size=4).cpu(),
                          predict(cpu, x), atol=1e-5)


@pytest.mark.cuda
def test_cuda_zoo_build_checks_shapes_on_the_meta_device(tmp_path):
    (tmp_path / "zoo.yaml").write_text(TINY)
    assert main(["zoo", "build", str(tmp_path / "zoo.yaml"), "--device", "cuda",
                 "--cache-dir", str(tmp_path / "c")]) == 0


@pytest.mark.cuda
def test_cuda_theory_check_and_image_folder_stream(tmp_path):
    from PIL import Image

    from transferability.adversarial import theory_check
    from transferability.data.user import ImageFolder

    gpu, cpu = theory_check((0.0, 0.5), n=50, device="cuda"), theory_check((0.0, 0.5), n=50)
    for a, b in zip(gpu, cpu, strict=True):
        assert a.alpha1 == pytest.approx(b.alpha1, rel=1e-6)
        assert a.fit_loss == pytest.approx(b.fit_loss, rel=1e-6, abs=1e-9)
    pix = torch.randint(0, 256, (10, 16, 16, 3), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
    for i, a in enumerate(pix):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(a.numpy(), "RGB").save(tmp_path / f"c{i % 2}" / f"{i}.png")
    folder = ImageFolder(tmp_path)
    batches = list(stream(folder, "cuda", batch_size=4, workers=2, ahead_bytes=1))
    x = torch.cat([b for b, _ in batches])
    assert x.is_cuda and x.dtype == torch.float32
    assert torch.allclose(x.cpu(), folder.load().x, rtol=0, atol=6e-8)
