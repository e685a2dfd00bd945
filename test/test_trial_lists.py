"""The ASF/AMC trial lists (training/data/cmu_*_trials.csv) that rebuild the real-skeleton data.

The lists name public files the training data is rebuilt from (``python -m training.asf_amc
--manifest``); the clones are not here, so this checks what a list can get wrong by itself:
its form, a trial listed twice (one motion counted double), and a held-out or excluded subject
slipping into the lists that only add training data.
"""

import re
from pathlib import Path

import pytest

from training.asf_amc import manifest_rows
from training.mocap import SPLITS

LISTS = Path(__file__).resolve().parents[1] / "training" / "data"
SHARED = "cmu_orig_trials.csv"  # the shared second file: its validation and test rows on purpose
ADDED = ("cmu_extra_trials.csv", "cmu_more_trials.csv")  # training data beyond the shared files
EXCLUDED = (49, 102)  # kept out of every file (../shared/data/README.md)


def rows(name: str) -> list[list[str]]:
    return manifest_rows(LISTS / name)


@pytest.mark.parametrize("name", (SHARED, *ADDED))
def test_every_row_names_a_pinned_trial(name):
    got = rows(name)
    assert got, name
    for repo, commit, sid, asf, amc, tag in got:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo), repo
        assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
        assert re.fullmatch(r"\d{2,3}_\d{2}", sid), sid
        assert asf.lower().endswith(".asf") and amc.lower().endswith(".amc"), (asf, amc)
        assert tag and " " not in tag


def test_no_trial_is_listed_twice():
    seen: dict[str, str] = {}
    for name in (SHARED, *ADDED):
        for row in rows(name):
            assert row[2] not in seen, f"{row[2]} in {name} and {seen.get(row[2])}"
            seen[row[2]] = name


@pytest.mark.parametrize("name", ADDED)
def test_added_lists_hold_training_subjects_only(name):
    val, test = SPLITS["v2"]
    for *_, sid, _asf, _amc, _tag in rows(name):
        subject = int(sid.split("_")[0])
        assert subject not in (*val, *test, *EXCLUDED), f"{name}: {sid}"
