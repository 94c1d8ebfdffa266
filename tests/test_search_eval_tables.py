"""search_eval's tables: the summary of per-sound rows and the paired differences against the lookup."""

from __future__ import annotations

import math

import pytest

from synthinv.search_eval import COLUMNS, paired_against, summarise


def row(method, sound, mss, level_db=0.0, f0_cents=10.0, pitched=True, budget=0.0):
    return {"set": "ood", "method": method, "budget_s": budget, "sound": sound, "mss": mss, "wmfcc": 1.0,
            "f0_cents": f0_cents, "pitched": pitched, "level_db": level_db, "seconds": 2.0, "renders": 1}


def test_summary_counts_tune_and_level_shares_over_the_right_sounds():
    rows = [row("retrieval", "a", 5.0, level_db=-1.0, f0_cents=10.0),
            row("retrieval", "b", 7.0, level_db=4.0, f0_cents=None),  # no pitch in the candidate: a miss
            row("retrieval", "c", 9.0, level_db=3.0, f0_cents=900.0, pitched=False)]  # no steady pitch: left out
    (s,) = summarise(rows)
    assert set(s) == set(COLUMNS)
    assert s["n"] == 3 and s["mss"] == pytest.approx(7.0)
    assert s["pitched"] == 2 and s["f0_within_50c"] == pytest.approx(0.5)
    assert s["level_db_abs"] == pytest.approx(8.0 / 3, abs=0.01)
    assert s["level_within_3db"] == pytest.approx(2 / 3, abs=1e-3)  # 3.0 dB counts as within


def test_paired_differences_use_only_sounds_both_methods_have():
    rows = [row("retrieval", "a", 5.0), row("retrieval", "b", 7.0), row("retrieval", "c", 1.0),
            row("default", "a", 4.0, budget=10.0), row("default", "b", 6.5, budget=10.0)]
    (line,) = paired_against(rows)
    assert "default at 10 s: -0.75" in line and "same 2 sounds, lower on 2" in line
    assert not math.isnan(float(line.split(":")[1].split()[0]))


def test_a_budgeted_baseline_is_paired_at_the_same_budget():
    rows = [row("default", "a", 4.0, budget=5.0), row("default", "b", 6.0, budget=5.0),
            row("default", "a", 3.0, budget=15.0), row("default", "b", 5.0, budget=15.0),
            row("default-stride-2", "a", 4.5, budget=5.0), row("default-stride-2", "b", 5.5, budget=5.0)]
    (line,) = paired_against(rows, "default")
    assert "default-stride-2 at 5 s: +0.00" in line and "against default on the same 2 sounds, lower on 1" in line
