"""The public API speaks one vocabulary (docs/glossary.md): this test fails when a public
signature drifts from it, when a result type stops round-tripping, or when library code
prints instead of logging."""

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import transferability
from transferability import (
    adversarial,
    estimators,
    jobs,
    ranking,
    training,
    transfer,
    transfer_matrix,
)
from transferability._results import Result
from transferability.attacks import AttackSpec
from transferability.studies import adv_knowledge as study
from transferability.studies import benchmark
from transferability.studies import robust_transfer as robust_transfer_study
from transferability.studies import surrogates as surrogate_study

SRC = Path(transferability.__file__).parent

#: Leading parameters of the public functions, as the glossary fixes them.
SIGNATURES = {
    adversarial.alpha: ["from_model", "to_model", "x", "y"],
    adversarial.alpha_to_many: ["from_model", "to_models", "x", "y"],
    adversarial.alpha_both_ways: ["model_a", "model_b", "x", "y_a", "y_b"],
    adversarial.gradient_alignment: ["model_a", "model_b", "x", "y"],
    adversarial.attribution_affinity: ["model_a", "model_b", "x", "attribution"],
    adversarial.adversarial_scores: ["reference", "sources", "x", "y"],
    adversarial.model_scores: ["reference", "source", "x", "y"],
    transfer_matrix.transfer_matrix: ["surrogates", "victims", "x", "y", "attack"],
    study.adv_knowledge_study: ["reference", "sources", "train", "test"],
    ranking.rank_sources: ["sources", "train"],
    training.fit: ["model", "train"],
    training.evaluate: ["model", "test"],
    transfer.linear_probe: ["model", "train", "test"],
    transfer.fine_tune: ["model", "train", "test"],
    estimators.leep: ["source_probs", "target_labels"],
    estimators.nce: ["source_labels", "target_labels"],
    estimators.h_score: ["features", "target_labels"],
    estimators.logme: ["features", "target_labels"],
    estimators.transrate: ["features", "target_labels"],
    estimators.nleep: ["features", "target_labels"],
    estimators.sfda: ["features", "target_labels"],
    estimators.parc: ["features", "target_labels"],
    estimators.gbc: ["features", "target_labels"],
    estimators.knn_accuracy: ["features", "target_labels"],
    estimators.etran: ["features", "target_labels"],
    estimators.ncti: ["features", "target_labels"],
    estimators.ncti_terms: ["features", "target_labels"],
}
#: Keyword-only parameters that must exist (the one way to configure an attack, ...).
KEYWORDS = {
    adversarial.alpha: {"attack"},
    adversarial.alpha_to_many: {"attack", "show_progress"},
    transfer_matrix.transfer_matrix: {"attack", "show_progress"},
    study.adv_knowledge_study: {"attack", "matrix_attack", "show_progress", "store",
                                "backend"},
    surrogate_study.surrogate_study: {"store", "backend", "show_progress", "cache_dir"},
    robust_transfer_study.robust_transfer_study: {"store", "backend", "show_progress",
                                                  "cache_dir"},
    jobs.run_jobs: {"study", "backend", "show_progress"},
    benchmark.run_benchmark: {"store", "backend", "show_progress", "cache_dir"},
    ranking.rank_sources: {"attack", "show_progress"},
    estimators.logme: {"target_values"},
    estimators.transrate: {"distortion"},
}


def _modules():
    for info in pkgutil.walk_packages([str(SRC)], "transferability."):
        yield importlib.import_module(info.name)


def _public_callables():
    seen = set()
    for module in _modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            fn = obj.__init__ if inspect.isclass(obj) else obj
            try:
                yield (getattr(obj, "__module__", module.__name__), name,
                       inspect.signature(fn).parameters)
            except (TypeError, ValueError):
                continue


@pytest.mark.parametrize("fn", list(SIGNATURES), ids=lambda f: f.__name__)
def test_leading_parameters_follow_the_glossary(fn):
    params = list(inspect.signature(fn).parameters)
    assert params[:len(SIGNATURES[fn])] == SIGNATURES[fn]
    assert KEYWORDS.get(fn, set()) <= set(params)


def test_banned_spellings_appear_nowhere_in_the_public_api():
    """``alpha`` is a step size inside attack classes only; ``eps`` belongs to the attacks;
    every attack is one value, ``attack`` (an AttackSpec or a factory), never a name beside
    a dict of its options; progress is ``show_progress``."""
    for module, name, params in _public_callables():
        where = f"{module}.{name}{tuple(params)}"
        # adversarial training methods pass eps/steps/alpha to their PGD as it spells them
        in_attacks = module.startswith(("transferability.attacks",
                                        "transferability.training.methods.adversarial"))
        assert in_attacks or "alpha" not in params, where
        assert in_attacks or "eps" not in params, where
        assert not {"step_size", "alpha_options", "attack_kw", "progress", "verbose"} & set(
            params), where
        assert not any(n.endswith("attack_" + "options") for n in params), where
        assert not any(p.kind is p.VAR_KEYWORD and n.startswith("attack")
                       for n, p in params.items()), where


#: The public callables that take a training ``method`` (docs/glossary.md: one meaning).
TRAINING_METHOD = {("transferability.training.loop", "fit"),
                   ("transferability.training.methods.base", "create_training_method"),
                   ("transferability.transfer", "fine_tune")}


def test_kind_is_a_job_kind_and_method_a_training_method():
    """``kind`` names a job kind only (an estimator's input is ``inputs``, a robust-transfer
    source's training method ``source_method``); ``method`` a training method only (the
    robust-transfer fine-tuning ``recipes``, an ``attribution`` map, a claim's
    ``interval``)."""
    from transferability.studies import list_studies

    for module, name, params in _public_callables():
        where = f"{module}.{name}{tuple(params)}"
        if {"kind", "kinds"} & set(params):
            assert module.startswith("transferability.jobs") or (module, name) == (
                "transferability.studies", "Study"), where
        if {"method", "methods"} & set(params):
            assert (module, name) in TRAINING_METHOD, where
    for each in list_studies():
        if each.full is not None:
            names = {f.name for f in dataclasses.fields(each.full)}
            assert not names & {"kind", "kinds", "method", "methods"}, (each.name, names)
    assert [f.name for f in dataclasses.fields(estimators.Estimator)] == [
        "name", "fn", "inputs", "min_per_class"]
    assert list(inspect.signature(estimators.register_estimator).parameters) == [
        "name", "inputs", "min_per_class"]


def test_models_estimators_take_reference_source_x_y():
    for name in estimators.list_estimators("models"):
        params = list(inspect.signature(estimators.get_estimator(name).fn).parameters)
        assert params[:4] == ["reference", "source", "x", "y"], name


def test_registries_list_sorted_names_without_import_order():
    from transferability import list_attacks, list_datasets, list_estimators, list_models

    for names in (list_models(), list_attacks(), list_datasets(), list_estimators()):
        assert names == sorted(names) and all(isinstance(n, str) for n in names)
    assert {"alpha1", "gradient_alignment", "attribution_affinity"} <= set(list_estimators())


def _result_types():
    return sorted({cls for module in _modules() for cls in vars(module).values()
                   if inspect.isclass(cls) and issubclass(cls, Result) and cls is not Result},
                  key=lambda c: c.__name__)


def test_every_result_type_is_a_frozen_dataclass():
    names = {c.__name__ for c in _result_types()}
    assert {"AlphaResult", "TransferMatrix", "StudyResult", "RankResult", "ProbeResult",
            "Outputs", "History", "TheoryRow", "AlignmentResult", "AffinityResult"} <= names
    for cls in _result_types():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls


def test_results_round_trip_with_a_schema(blobs):
    import json

    from transferability.adversarial import alpha, gradient_alignment, theory_check
    from transferability.features import extract
    from transferability.models import create_model
    from transferability.report import _jsonable

    x, y = blobs
    torch.manual_seed(0)
    a, b = create_model("mlp", 3), create_model("cnn", 3)
    training.fit(a, (x, y), epochs=1, show_progress=False)
    results = [alpha(a, b, x[:12], y[:12], attack=AttackSpec("pgd", {"steps": 2})),
               gradient_alignment(a, b, x[:6]), theory_check((0.0, 0.5), n=20)[1],
               extract(a, x[:4], y[:4]),
               transfer.linear_probe(a, (x, y), (x, y), shots=3, repeats=2),
               transfer_matrix.transfer_matrix({"a": a}, {"b": b}, x[:8], y[:8],
                                               AttackSpec("fgsm", {"eps": 0.1}))]
    for result in results:
        data = result.to_dict()
        assert data["type"] == type(result).__name__ and data["schema"] == 1
        back = type(result).from_dict(json.loads(json.dumps(_jsonable(data))))
        assert back.to_dict() == data, type(result).__name__
        with pytest.raises(ValueError, match="newer"):
            type(result).from_dict({**data, "schema": 99})
    with pytest.raises(ValueError, match="expected a AlphaResult"):
        type(results[0]).from_dict(results[1].to_dict())


def test_library_code_logs_and_never_prints():
    for path in SRC.rglob("*.py"):
        if path.parent.name == "cli":  # the command line prints
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                pytest.fail(f"{path.relative_to(SRC)}:{node.lineno} calls print()")
            assert not (isinstance(node, ast.arg) and node.arg == "log"), path


def test_show_progress_false_draws_nothing(blobs, capsys, monkeypatch):
    from transferability.models import create_model
    from transferability.ranking import rank_sources

    monkeypatch.setenv("TRANSFERABILITY_PROGRESS", "1")  # bars would be on by default
    x, y = blobs
    from transferability.data import ImageDataset

    train = ImageDataset(x, y)
    reference = create_model("mlp", 3)
    training.fit(reference, train, epochs=1, show_progress=False)
    rank_sources({"a": create_model("mlp", 3)}, train, estimators=["alpha1", "leep"],
                 reference=reference, alpha_per_class=2,
                 attack=AttackSpec("pgd", {"steps": 1}), show_progress=False)
    assert capsys.readouterr().err == ""


def test_no_file_cites_anything_outside_the_repository():
    root = SRC.parents[1]
    for path in [*root.glob("*.md"), *(root / "docs").glob("*.md"), *SRC.rglob("*.py"),
                 *(root / "tests").glob("*.py"), *(root / "benchmarks").glob("*.py")]:
        text = path.read_text()
        assert "DESIGN" + ".md" not in text and "../" + "shared" not in text, path


def test_attacks_are_built_through_the_registry_above_the_attacks():
    """Above ``attacks/`` an attack is a name (or an ``AttackSpec``) built by the registry,
    never an attack class called by hand (one check of its options, one eps rule)."""
    from transferability import attacks
    from transferability.attacks import Attack

    classes = {n for n in attacks.__all__ if inspect.isclass(getattr(attacks, n))
               and issubclass(getattr(attacks, n), Attack)}
    for path in SRC.rglob("*.py"):
        if "attacks" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in classes:
                pytest.fail(f"{path.relative_to(SRC)}:{node.lineno} builds {node.func.id} "
                            "by hand; use AttackSpec(name, options).create(model)")


def test_every_study_settings_are_one_frozen_dataclass_of_its_keywords():
    from transferability.studies import Settings, list_studies

    for each in list_studies():
        kind = type(each.full)
        assert issubclass(kind, Settings) and kind.__dataclass_params__.frozen, each.name
        for other in (each.quick, each.tiny):
            assert other is None or type(other) is kind, each.name
        # one signature: run(settings, *, store, cache_dir, backend, device, show_progress)
        assert list(inspect.signature(each.run).parameters)[0] == "settings", each.name


#: Accuracy is ``accuracy`` (clean) beside ``robust_accuracy`` (docs/glossary.md). These
#: older spellings remain only where old data are read: the ``upgrade`` of the result types
#: that renamed them and the deprecation table (``_deprecated.py``), which ``History``'s
#: ``RENAMED_RECORDS`` and ``baselines.model_accuracy`` (the one reader of zoo
#: checkpoints' metrics) read. They may only shrink: a new one fails here,
#: and a file that drops some must lower its count.
RETIRED_ACCURACY = re.compile(
    r"\b(clean_acc|clean_accuracy|test_acc|eval_acc|test_loss|eval_loss)\b")
RETIRED_LEFT = {"_deprecated.py": 3, "attacks/robust.py": 1, "baselines.py": 1,
                "studies/robust_transfer.py": 2, "studies/surrogates.py": 2}


def test_retired_accuracy_spellings_only_shrink():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if n := len(RETIRED_ACCURACY.findall(path.read_text())):
            found[path.relative_to(SRC).as_posix()] = n
    assert found == RETIRED_LEFT


def test_n_per_class_is_only_the_data_s_own_images_per_class():
    """``n_per_class`` means "this many images per class of this data" (``per_class``,
    ``load_dataset``, ``dataset_from_spec``, data specs). Whose images a study or
    ``rank_sources`` counts has a name that says so (``alpha_per_class``,
    ``train_per_class``, ``attack_per_class``, ``target_per_class``, ...)."""
    from transferability import studies
    from transferability.studies import list_studies

    found = []
    for info in pkgutil.walk_packages(studies.__path__, "transferability.studies."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if callable(obj) and not inspect.isclass(obj):
                if "n_per_class" in inspect.signature(obj).parameters:
                    found.append(f"{info.name}.{name}")
    if "n_per_class" in inspect.signature(ranking.rank_sources).parameters:
        found.append("ranking.rank_sources")
    for each in list_studies():
        if callable(each.run) and "n_per_class" in inspect.signature(each.run).parameters:
            found.append(f"study {each.name}: run")
        if each.full is not None and "n_per_class" in {
                f.name for f in dataclasses.fields(each.full)}:
            found.append(f"study {each.name}: {type(each.full).__name__}")
        if any("n_per_class" in changes for changes in each.by_family.values()):
            found.append(f"study {each.name}: colour")
    assert found == []
    # the data keep it: a spec's n_per_class draws that many images of every class
    from transferability.data import dataset_from_spec

    data = dataset_from_spec({"dataset": "digits", "n_per_class": 3}, "train")
    assert data.class_counts().tolist() == [3] * data.num_classes


def test_one_job_kind_measures_a_transfer_matrix_row():
    """The studies share ``transfer_row`` (transfer_matrix.py); no study defines its own."""
    from transferability.jobs import list_job_kinds
    from transferability.jobs.graph import get_job_kind

    kinds = list_job_kinds()
    assert "transfer_row" in kinds and not {"matrix_row"} & set(kinds)
    assert get_job_kind("transfer_row").fn.__module__ == "transferability.transfer_matrix"
    rows = [k for k in kinds if k.endswith("_row")]
    assert rows == ["transfer_row"], rows


def test_no_two_modules_import_each_other():
    """Imports run one way between any two modules (lazy imports inside functions count):
    the layers of docs/architecture.md, with no module reaching back to one that uses it."""
    root = SRC
    mods = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(name, node):
        package = name if mods[name].name == "__init__.py" else name.rpartition(".")[0]
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = package
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        module = (base + ("." + node.module if node.module else "")) if node.level \
            else node.module
        return [module, *(f"{module}.{a.name}" for a in node.names)]

    edges = {name: {t for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Import | ast.ImportFrom)
                    for t in targets(name, node) if t in mods and t != name}
             for name, path in mods.items()}
    both = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a]
                   if a in edges.get(b, ()) and not (b.startswith(a + ".")
                                                     or a.startswith(b + "."))})
    assert both == []
