"""The written contracts (`lmlab.contracts`) are what the code relies on: every data module and source of
`conf/data` declares its Protocol explicitly (so callers call optional members without probing), and a source
that writes only the required members gets the documented defaults."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import compose
from hydra.utils import get_class

from lmlab.contracts import DataModule, ExampleSource, Source, TaskModule, TextSource
from lmlab.data.pretrain import PretrainDataModule

SRC = Path(__file__).parents[2] / "src"
DATA_OPTIONS = sorted(p.stem for p in (SRC.parent / "conf" / "data").glob("*.yaml"))


@pytest.mark.parametrize("data", DATA_OPTIONS)
def test_every_data_option_declares_its_contracts(data):
    cfg = compose([f"data={data}"]).data
    module_class = get_class(cfg._target_)
    assert DataModule in module_class.__mro__, module_class
    specs = [cfg.source] if cfg.get("source") else [spec.source for spec in (cfg.get("sources") or {}).values()]
    pretraining = issubclass(module_class, PretrainDataModule)
    for spec in specs:
        assert (TextSource if pretraining else ExampleSource) in get_class(spec._target_).__mro__, spec._target_


def test_a_source_with_only_the_required_members_gets_the_defaults():
    class Lines(TextSource):
        def fingerprint(self) -> str:
            return "lines"

        def documents(self, split: str) -> Iterator[str]:
            yield "a line"

    class Rows(ExampleSource):
        def fingerprint(self) -> str:
            return "rows"

        def load(self, split: str):
            return []

    assert Lines().size_hint("train") is None and Lines().check_text() is None
    assert Lines().more_text("validation", "data.source") == "give data.source more text"
    assert Rows().label_names() is None and Rows().check_text() is None


def test_no_contract_member_is_probed_and_no_class_is_matched_by_name():
    members = {name for protocol in (Source, TextSource, ExampleSource, DataModule, TaskModule)
               for name in [*vars(protocol), *protocol.__annotations__] if not name.startswith("_")}
    probe = re.compile(r"(hasattr|getattr)\([^()]*, [\"'](" + "|".join(sorted(members)) + r")[\"']")
    by_name = re.compile(r"__name__\)?\.endswith\(|__name__ ?==|[\"'][A-Za-z]+(DataModule|Module)[\"'] ?(in|==)")
    found = [f"{path.relative_to(SRC)}:{n}: {line.strip()}" for path in sorted(SRC.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if probe.search(line) or (by_name.search(line) and "__main__" not in line)]
    assert not found, found
