"""The studies' claims are decided from t intervals of paired per-seed differences
(stats.claim), never from point means, and survive the store's JSON round trip."""

import numpy as np
import pytest
from scipy import stats as st

from transferability.html_report import format_result
from transferability.report import format_claims, format_radius
from transferability.stats import Claim
from transferability.studies.robust_transfer import RobustTransferResult, _summary
from transferability.studies.robust_transfer import _claims as robust_claims
from transferability.studies.surrogates import _claims as surrogate_claims
from transferability.studies.surrogates import _early_stop

ROBUST = {  # (source method, recipe) -> robust accuracy per seed; clean accuracy is 0.9 + k/100
    ("standard", "linear probe"): [0.02, 0.05, 0.03],
    ("pgd_at", "linear probe"): [0.40, 0.46, 0.41],
    ("pgd_at", "full fine-tune"): [0.10, 0.50, 0.05],
    ("pgd_at", "LwF"): [0.20, 0.22, 0.21],
}


def _robust_rows(seeds=(0, 1, 2)):
    return [{"source_method": s, "recipe": m, "seed": seed, "accuracy": 0.9 + k / 100,
             "robust_accuracy@0.1": v[seed]}
            for k, ((s, m), v) in enumerate(ROBUST.items()) for seed in seeds]


def test_robust_claims_are_t_intervals_of_seed_differences():
    claims = {c.statement.split(":")[0]: c for c in robust_claims(_robust_rows(), 0.1)}
    a = next(c for k, c in claims.items() if k.startswith("(a)"))
    d = np.array([0.38, 0.41, 0.38])  # pgd_at probe - standard probe, seed by seed
    low, high = st.t.interval(0.95, 2, loc=d.mean(), scale=st.sem(d))
    assert (a.difference, a.low, a.high, a.n) == pytest.approx((d.mean(), low, high, 3))
    assert a.verdict == "holds"
    # probe - full fine-tune = [0.30, -0.04, 0.36]: positive mean, interval across 0
    b = next(c for k, c in claims.items() if k.startswith("(b) fine-tuning"))
    assert b.difference == pytest.approx(0.62 / 3) and b.verdict == "inconclusive"
    # LwF clean - probe clean = +0.02 on every seed (k = 3 vs 1): a zero-width interval > 0
    c = next(c for k, c in claims.items() if k.startswith("(c) LwF"))
    assert c.difference == pytest.approx(0.02) and c.verdict == "holds"
    assert all(c.n == 3 for c in claims.values())
    assert not any(k.startswith("(d)") for k in claims)  # no CARTL rows, no (d) claims


def test_fewer_than_three_seeds_is_inconclusive_and_said_plainly():
    rows = _robust_rows(seeds=(0, 1))
    claims = robust_claims(rows, 0.1)
    assert claims and {c.verdict for c in claims} == {"inconclusive"}
    text = format_claims(claims, [0, 1])
    assert "2 seeds" in text and "exercises the code" in text
    assert "exercises" not in format_claims(claims, [0, 1, 2])
    result = RobustTransferResult(rows, _summary(rows, (0.1,)), [], claims, {"seeds": [0, 1]})
    again = RobustTransferResult.from_dict(result.to_dict())
    assert again == result and isinstance(again.claims[0], Claim)
    assert "CI [" in format_result(again) and "inconclusive" in format_result(again)
    one = Claim.from_dict({**claims[0].to_dict(), "low": None, "high": None})  # results.json
    assert str(one).endswith("no interval, n=2)")


@pytest.mark.parametrize(("eps", "text"), [(0.1, "0.1"), (0.2, "0.2"), (8 / 255, "8/255"),
                                           (4 / 255, "4/255"), ("0.01568627450980392", "4/255"),
                                           (0.0123456789, "0.01235"), (2.0, "2")])
def test_a_radius_reads_as_written(eps, text):
    assert format_radius(eps) == text


def test_a_radius_on_the_8_bit_grid_prints_as_k_over_255_in_claims_and_tables():
    eps = 4 / 255
    rows = [{**r, f"robust_accuracy@{eps}": r.pop("robust_accuracy@0.1")}
            for r in _robust_rows()]
    claims = robust_claims(rows, eps)
    assert all("0.0156" not in c.statement for c in claims)
    assert "robust accuracy at ε=4/255" in claims[0].statement
    text = format_result(RobustTransferResult(rows, _summary(rows, (eps,)), [], claims,
                                              {"seeds": [0, 1, 2]}))
    assert "robust_accuracy@4/255" in text and "0.0156" not in text


def test_surrogate_claims_pair_seeds_and_leave_out_diverged():
    rows = []
    for seed, (full, early, lsam, lgv) in enumerate([(0.40, 0.50, 0.60, 0.45),
                                                     (0.42, 0.55, 0.61, 0.47),
                                                     (0.41, 0.52, 0.66, 0.30)]):
        for kind, t in [("fully trained", full), ("early stopped", early),
                        ("l-SAM rho=0.1", lsam), ("LGV (4 models)", lgv)]:
            rows.append({"regime": kind, "seed": seed, "transfer": t,
                         "diverged": kind == "LGV (4 models)" and seed == 2})
    pair = [{"a_to_b": 0.6, "b_to_a": 0.5, "accuracy_a": 0.9, "accuracy_b": 0.9},
            {"a_to_b": 0.2, "b_to_a": 0.3, "accuracy_a": 0.9, "accuracy_b": 0.9}]
    sharp = {"spearman": -0.5, "low": -0.9, "high": 0.1, "n": 12}
    lsam, early, lgv, adam, flat = surrogate_claims(rows, pair, sharp)
    assert lsam.difference == pytest.approx(np.mean([0.10, 0.06, 0.14])) and lsam.n == 3
    assert lsam.verdict == "holds" and early.verdict == "holds"
    assert lgv.n == 2 and lgv.verdict == "inconclusive"  # seed 2's LGV did not train
    assert adam.difference == pytest.approx(0.3) and adam.n == 1
    assert adam.verdict == "inconclusive"
    # the correlation's bootstrap interval [-0.9, 0.1] crosses 0
    assert (flat.difference, flat.low, flat.high) == (0.5, -0.1, 0.9)
    assert flat.verdict == "inconclusive"
    assert Claim.from_interval("x", 0.5, 0.2, 0.9, 12, "bootstrap").verdict == "holds"


def test_a_schema_1_surrogate_result_reads_with_todays_accuracy_names():
    """Schema 2 renamed ``test_acc`` -> ``accuracy`` and ``acc_a/_b`` -> ``accuracy_a/_b``,
    schema 3 the settings' ``n_per_class`` -> ``train_per_class``: a stored schema-1 dict is
    read under the new names, numbers untouched."""
    from transferability.studies.surrogates import SurrogateStudyResult

    old = {"type": "SurrogateStudyResult", "schema": 1,
           "rows": [{"kind": "fully trained", "seed": 0, "test_acc": 0.9, "transfer": 0.4}],
           "per_epoch": [{"seed": 0, "epoch": 1, "test_acc": 0.7}],
           "summary": [{"kind": "fully trained", "test_acc": 0.9}], "sharpness": {},
           "pair": [{"lam": 0.0, "acc_a": 0.8, "acc_b": 0.85}], "claims": [],
           "settings": {"seeds": [0], "n_per_class": 80}}
    result = SurrogateStudyResult.from_dict(old)
    assert result.rows == [{"regime": "fully trained", "seed": 0, "accuracy": 0.9,
                            "transfer": 0.4}]  # a training regime is a regime, not a kind
    assert result.summary[0]["regime"] == "fully trained"
    assert result.per_epoch[0]["accuracy"] == 0.7 and result.summary[0]["accuracy"] == 0.9
    assert result.pair == [{"lam": 0.0, "accuracy_a": 0.8, "accuracy_b": 0.85}]
    assert result.settings == {"seeds": [0], "train_per_class": 80}
    data = result.to_dict()
    assert data["schema"] == 4 and SurrogateStudyResult.from_dict(data) == result
    assert SurrogateStudyResult.from_dict({**data, "schema": 2}) == result  # idempotent
    with pytest.raises(ValueError, match="newer"):
        SurrogateStudyResult.from_dict({**data, "schema": 5})


def test_a_schema_1_robust_transfer_result_reads_with_todays_accuracy_names():
    old = {"type": "RobustTransferResult", "schema": 1,
           "rows": [{"source": "standard", "method": "LwF", "clean_acc": 0.9,
                     "robust_acc@0.1": 0.2}],
           "summary": [{"source": "standard", "method": "LwF", "clean_acc": 0.9,
                        "clean_std": 0.01, "robust_acc@0.1": 0.2, "robust_std@0.1": 0.03}],
           "ablation": [], "claims": [], "settings": {}}
    result = RobustTransferResult.from_dict(old)
    assert result.rows == [{"source_method": "standard", "recipe": "LwF", "accuracy": 0.9,
                            "robust_accuracy@0.1": 0.2}]
    assert result.summary == [{"source_method": "standard", "recipe": "LwF", "accuracy": 0.9,
                               "accuracy_std": 0.01, "robust_accuracy@0.1": 0.2,
                               "robust_accuracy_std@0.1": 0.03}]
    assert RobustTransferResult.from_dict(result.to_dict()) == result


def test_a_schema_2_robust_transfer_result_reads_with_source_method_and_recipe():
    settings = {"seeds": [0], "methods": ["LwF"]}
    old = {"type": "RobustTransferResult", "schema": 2,
           "rows": [{"source": "pgd_at", "method": "LwF", "seed": 0, "accuracy": 0.9}],
           "summary": [], "ablation": [], "claims": [], "settings": settings}
    result = RobustTransferResult.from_dict(old)
    assert result.rows == [{"source_method": "pgd_at", "recipe": "LwF", "seed": 0,
                            "accuracy": 0.9}]
    assert result.settings == {"seeds": [0], "recipes": ["LwF"]}
    assert "methods" in old["settings"]  # the stored dict is left as it was


def test_early_stopping_picks_the_best_epoch_that_trained():
    # epoch 1 is still at chance: its transfer (a few pairs fooled at random) is the highest
    epochs = [{"epoch": 1, "transfer": 0.10}, {"epoch": 2, "transfer": 0.04},
              {"epoch": 3, "transfer": 0.07}, {"epoch": 4, "transfer": 0.06}]
    assert _early_stop(epochs, lambda epoch: epoch > 1)["epoch"] == 3
    assert _early_stop(epochs, lambda epoch: True)["epoch"] == 1
    assert _early_stop(epochs, lambda epoch: False)["epoch"] == 1  # none trained: all epochs
