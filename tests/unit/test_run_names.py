"""Default run names: short, readable, unique per command, and usable on a command line without quoting."""

from __future__ import annotations

import re

import pytest

from lmlab.config import RUN_NAME_CHARS, run_name_from_overrides

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.mark.parametrize(("overrides", "name"), [
    ("", "default"),
    ("model=llama-tiny", "model-llama-tiny"),
    ("debug=fast,task=classify", "debug-fast_task-classify"),
])
def test_plain_group_choices_read_as_they_were_typed(overrides, name):
    assert run_name_from_overrides(overrides) == name


def test_the_issue_example_keeps_the_data_path_and_has_no_equals_or_commas():
    overrides = ("data.labels=[ABBR,DESC,ENTY,HUM,LOC,NUM],data.source.path=/home/me/corpora/trec/,data=local,"
                 "task=classify,trainer.max_epochs=3")
    name = run_name_from_overrides(overrides)
    assert SAFE.match(name), name
    assert "path-trec" in name and name.startswith("labels-ABBR-DESC-ENTY-HUM-LOC-NUM_")
    assert len(name) <= RUN_NAME_CHARS + 9
    assert run_name_from_overrides(overrides) == name  # the same command finds the same directory


@pytest.mark.parametrize(("a", "b"), [
    ("data.source.path=/a/trec", "data.source.path=/b/trec"),        # same last path part
    ("data.max_length=64", "model.max_length=64"),                    # same key in two groups
    ("optimizer.lr=0.001", "optimizer.lr=-0.001"),
    ("x=" + "a" * 100 + "1", "x=" + "a" * 100 + "2"),                 # differ past the cut
    ("a=1,b=2", "a=1,b=2,c.d=" + "e" * 80),                           # an item that does not fit is dropped
])
def test_commands_that_differ_get_different_safe_names(a, b):
    name_a, name_b = run_name_from_overrides(a), run_name_from_overrides(b)
    assert name_a != name_b
    assert SAFE.match(name_a) and SAFE.match(name_b)
    assert len(name_a) <= RUN_NAME_CHARS + 9 and len(name_b) <= RUN_NAME_CHARS + 9
