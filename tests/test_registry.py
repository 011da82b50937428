"""The registries of components: each entry is a builder with its own options spec; the command line shows the
chosen components' options, a spec round-trips through its JSON form, and the documentation's options table lists
exactly what each registered component takes."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import jaxauction as ja
from jaxauction import cli
from jaxauction.registry import NoOptions, Registry, option_names

DOC = Path(__file__).resolve().parents[1] / "docs" / "experiment.md"


@dataclasses.dataclass(frozen=True)
class TaxOptions:
    tax: float = 0.1
    """a share of the price"""


def test_registering_checks_the_options_spec_and_the_name():
    registry = Registry("mechanism")
    registry.register("taxed", TaxOptions, "a rule with a tax")(lambda options, n, m, s: (options.tax, n, m, s))
    assert registry["taxed"]({"tax": 0.2}, 3, 1, 9.0) == (0.2, 3, 1, 9.0)  # a dict of fields is coerced
    assert registry["taxed"](None, 3, 1, 9.0)[0] == 0.1
    with pytest.raises(ValueError, match="registered already"):
        registry.register("taxed", TaxOptions)
    with pytest.raises(ValueError, match="unknown mechanism 'taxd'; choose one of .'taxed'."):
        registry["taxd"]
    with pytest.raises(ValueError, match="mechanism 'taxed' has no option vat; its options: .'tax'."):
        registry["taxed"]({"vat": 0.2}, 3, 1, 9.0)
    with pytest.raises(TypeError, match="must be a frozen dataclass"):
        registry.register("loose", dataclasses.make_dataclass("Loose", [("x", int, 0)]))
    with pytest.raises(TypeError, match="every option needs a default"):
        registry.register("bare", dataclasses.make_dataclass("Bare", [("x", int)], frozen=True))
    assert "taxed (a rule with a tax)" in registry.help()


def test_merged_options_agree_and_check_every_part():
    merged = ja.LEARNERS.options(["epsilon_greedy", "hedge", "truthful"])
    assert set(option_names(merged)) == set(option_names(ja.EpsilonGreedyOptions)) | set(
        option_names(ja.TabularOptions)
    )
    together = ja.LEARNERS.options(["hedge", "epsilon_greedy", "truthful"])
    assert together is ja.LEARNERS.options(["hedge", "epsilon_greedy"])  # cached: configs holding it compare equal
    assert ja.LEARNERS.options(["truthful"]) is NoOptions
    with pytest.raises(ValueError, match="explore_steps"):  # epsilon-greedy's own check runs in the merged spec
        merged(explore_steps=-1)
    with pytest.raises(ValueError, match="bid_fractions"):  # and hedge's
        merged(bid_fractions=1)
    clash = dataclasses.make_dataclass("Clash", [("n_bids", int, 3)], frozen=True)
    registry = Registry("learner")
    registry.register("a", ja.EpsilonGreedyOptions)(lambda *a: None)
    registry.register("b", clash)(lambda *a: None)
    with pytest.raises(TypeError, match="option 'n_bids' differs between EpsilonGreedyOptions and Clash"):
        registry.options(["a", "b"])


def test_specs_round_trip_through_their_json_form():
    config = ja.DMOConfig.of(mechanism="prize_all_pay", prizes=(0.7, 0.3), learner="hedge,shading,shading",
                             shading=0.6, bidder_lr=0.1)  # fmt: skip
    assert cli.from_dict(ja.DMOConfig, dataclasses.asdict(config)) == config
    with pytest.raises(ValueError, match="MechanismSpec has no setting reserve"):  # an old, flat header
        cli.from_dict(ja.MechanismSpec, {"mechanism": "first_price", "reserve": 1.0})


def test_the_command_line_holds_the_chosen_components_options(capsys):
    config, _ = cli.parse(ja.DMOConfig, ["--mechanism", "first_price", "--reserve", "2", "--learner",
                                         "hedge,truthful,truthful", "--bidder-lr", "0.1"], experiment="x")  # fmt: skip
    assert config == ja.DMOConfig.of(mechanism="first_price", reserve=2.0, learner="hedge,truthful,truthful",
                                     bidder_lr=0.1)  # fmt: skip
    assert type(config) is ja.DMOConfig and type(config.mechanism) is ja.MechanismSpec
    with pytest.raises(SystemExit):
        cli.parse(ja.DMOConfig, ["--mechanism", "first_price", "--prizes", "1", "0"], experiment="x")
    assert "--prizes is an option of mechanism prize_all_pay, not of the chosen mechanism 'first_price'" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        cli.parse(ja.DMOConfig, ["--mechanism", "first_price", "--help"], experiment="x")
    shown = capsys.readouterr().out
    assert "--temperature" in shown and "--prizes" not in shown and "--hidden" not in shown


def test_the_options_table_lists_what_each_registered_component_takes():
    rows = re.findall(r"^\| (`[^|]+`|classical extras) \| (.+) \|$", DOC.read_text(), re.M)
    flags = {name: re.findall(r"`--([\w-]+)", text) for name, text in rows}
    extras = {f.replace("-", "_") for f in flags.pop("classical extras")}
    table = {}
    for names, found in flags.items():
        for name in re.findall(r"`(\w+)`", names):
            text = dict(rows)[names]
            table[name] = {f.replace("-", "_") for f in found} | (extras if "classical extras" in text else set())
    for registry in (ja.MECHANISMS, ja.LEARNERS):
        packaged = {n: c for n, c in registry.items() if c.build.__module__.startswith("jaxauction.")}
        assert set(packaged) <= set(table), f"{registry.kind}s missing from the table: {set(packaged) - set(table)}"
        for name, component in packaged.items():
            assert table[name] == set(option_names(component.options)), name
