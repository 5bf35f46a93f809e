import json

import pytest

from interp.config import ConfigError, apply_overrides, from_dict, to_dict
from interp.data.modular import ModularConfig
from interp.experiments.grokking import PRESETS, GrokkingConfig, preset
from interp.models import MLPConfig, TransformerConfig
from interp.training import GrokfastConfig, TrainConfig

BAD_FIELDS = [
    (ModularConfig, {"p": 1}, "data.p"),
    (ModularConfig, {"p": 12, "op": "/"}, "data.p must be prime"),
    (ModularConfig, {"op": "^"}, "data.op"),
    (ModularConfig, {"pairs": "both"}, "data.pairs"),
    (ModularConfig, {"train_fraction": 0.0}, "data.train_fraction"),
    (ModularConfig, {"train_fraction": 1.0}, "data.train_fraction"),
    (ModularConfig, {"train_fraction": "half"}, "data.train_fraction"),
    (TrainConfig, {"steps": 0}, "train.steps"),
    (TrainConfig, {"lr": -1e-3}, "train.lr"),
    (TrainConfig, {"lr": float("nan")}, "train.lr"),
    (TrainConfig, {"weight_decay": -1.0}, "train.weight_decay"),
    (TrainConfig, {"betas": (0.9, 1.0)}, "train.betas[1]"),
    (TrainConfig, {"warmup_steps": -1}, "train.warmup_steps"),
    (TrainConfig, {"batch_size": 0}, "train.batch_size"),
    (TrainConfig, {"loss_dtype": "float16"}, "train.loss_dtype"),
    (TrainConfig, {"eval_every": 0}, "train.eval_every"),
    (TrainConfig, {"checkpoint_every": 0}, "train.checkpoint_every"),
    (TrainConfig, {"lr_schedule": "step"}, "train.lr_schedule"),
    (GrokfastConfig, {"alpha": 1.0}, "train.grokfast.alpha"),
    (GrokfastConfig, {"kind": "fft"}, "train.grokfast.kind"),
    (GrokfastConfig, {"window": 0}, "train.grokfast.window"),
    (TransformerConfig, {"n_layers": 0}, "model.n_layers"),
    (TransformerConfig, {"d_model": 0}, "model.d_model"),
    (TransformerConfig, {"act_fn": "tanh"}, "model.act_fn"),
    (TransformerConfig, {"normalization": "BN"}, "model.normalization"),
    (MLPConfig, {"d_hidden": 0}, "model.d_hidden"),
    (MLPConfig, {"combine": "product"}, "model.combine"),
    (MLPConfig, {"bias": "yes"}, "model.bias"),
    (GrokkingConfig, {"seed": -1}, "seed"),
]


@pytest.mark.parametrize("cls,kwargs,needle", BAD_FIELDS)
def test_each_bad_field_gives_a_clear_error(cls, kwargs, needle):
    # direct construction (what a script does); under the test suite's beartype
    # hook a value of the wrong *type* is already stopped by the annotation
    with pytest.raises((ValueError, TypeError)) as info:
        cls(**kwargs)
    if isinstance(info.value, ValueError):
        assert needle in str(info.value)
    # ... and from_dict of the whole experiment config (what JSON and --set take)
    section = {
        ModularConfig: ["data"],
        TrainConfig: ["train"],
        GrokfastConfig: ["train", "grokfast"],
        TransformerConfig: ["model"],
        MLPConfig: ["model"],
        GrokkingConfig: [],
    }[cls]
    data = dict(kwargs)
    if cls in (TransformerConfig, MLPConfig):
        data["kind"] = "transformer" if cls is TransformerConfig else "mlp"
    for key in reversed(section):
        data = {key: data}
    with pytest.raises(ValueError) as info:
        from_dict(GrokkingConfig, data)
    assert needle in str(info.value)
    # the message shows the offending value
    value = next(iter(kwargs.values()))
    value = value[-1] if isinstance(value, tuple) else value
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_model_vocab_must_match_data():
    with pytest.raises(ConfigError, match="d_vocab=50 does not match data.p=59"):
        GrokkingConfig(model=TransformerConfig(d_vocab=50))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = preset(name)
    text = json.dumps(to_dict(cfg))
    back = from_dict(GrokkingConfig, json.loads(text))
    assert back == cfg
    assert to_dict(back) == to_dict(cfg)


def test_overrides_apply_and_revalidate():
    cfg = preset("cpu-quick", overrides=["train.lr=1e-3", "data.p=97", "train.betas=[0.8,0.9]"])
    assert cfg.train.lr == 1e-3
    assert cfg.data.p == 97 and cfg.model.d_vocab == 98 and cfg.model.d_vocab_out == 97
    assert cfg.train.betas == (0.8, 0.9)
    with pytest.raises(ConfigError, match="train.lr"):
        preset("cpu-quick", overrides=["train.lr=-1"])
    assert preset("cpu-quick", overrides=["train.stop_accuracy=0.99"]).train.stop_accuracy == 0.99
    for bad in ("0", "1.5"):
        with pytest.raises(ConfigError, match="train.stop_accuracy"):
            preset("cpu-quick", overrides=[f"train.stop_accuracy={bad}"])


def test_unknown_override_keys_are_errors():
    with pytest.raises(ConfigError, match="unknown config key 'train.learning_rate'"):
        preset("cpu-quick", overrides=["train.learning_rate=1e-3"])
    with pytest.raises(ConfigError, match="unknown config key 'optim'"):
        preset("cpu-quick", overrides=["optim.lr=1e-3"])
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(TrainConfig(), ["lr"])


def test_override_can_switch_on_an_optional_section():
    cfg = preset("tiny", overrides=["train.grokfast.lamb=3"])
    assert cfg.train.grokfast == GrokfastConfig(lamb=3.0)
    cfg = apply_overrides(cfg, ["train.grokfast=null"])
    assert cfg.train.grokfast is None


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown grokking preset 'nope'"):
        preset("nope")


def _config_classes():
    import dataclasses
    import typing

    from interp.config import is_config
    from interp.config.catalog import RUNS, STUDIES

    seen, todo = [], [e.config_class() for e in (*RUNS.values(), *STUDIES.values())]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        for hint in typing.get_type_hints(cls).values():
            args = typing.get_args(typing.get_args(hint)[0]) if typing.get_args(hint) else ()
            for tp in (hint, *typing.get_args(hint), *args):
                if is_config(tp) and tp not in seen:
                    todo.append(tp)
        assert dataclasses.is_dataclass(cls)
    return seen


def test_every_config_field_has_help_text():
    import dataclasses

    classes = _config_classes()
    names = {c.__name__ for c in classes}
    assert {"GrokkingConfig", "TrainConfig", "GrokfastConfig", "TransformerConfig", "MLPConfig",
            "ModularConfig", "TicketSpec", "SuiteSpec", "GridSpec", "CorpusConfig",
            "TokenizerConfig", "EvalConfig"} <= names  # fmt: skip
    for cls in classes:
        for f in dataclasses.fields(cls):
            info = f.default
            assert getattr(info, "description", None), f"{cls.__name__}.{f.name} has no help"


@pytest.mark.parametrize("experiment", ["grokking", "induction", "repeated-data"])
def test_every_run_preset_round_trips_and_describes_itself(experiment):
    from interp.config import describe
    from interp.config.catalog import run_entry

    entry = run_entry(experiment)
    cls = entry.config_class()
    for name, cfg in entry.preset_table().items():
        back = from_dict(cls, json.loads(json.dumps(to_dict(cfg))))
        assert back == cfg, name
        keys = describe(cfg)
        assert len({k.key for k in keys}) == len(keys) and all(k.help for k in keys), name


def test_a_choice_field_is_a_literal_checked_once():
    with pytest.raises(ConfigError) as info:
        from_dict(GrokkingConfig, {"train": {"loss_dtype": "float16"}})
    assert str(info.value) == (
        "train.loss_dtype must be one of 'float32' or 'float64', got 'float16'"
    )
    with pytest.raises(ConfigError, match="model.kind must be one of"):
        from_dict(GrokkingConfig, {"model": {"kind": "cnn"}})
    with pytest.raises(ConfigError, match="must be an integer, got True"):
        from_dict(GrokkingConfig, {"seed": True})  # strict: no bool for an int
    with pytest.raises(ConfigError, match="must be an integer, got '3'"):
        from_dict(GrokkingConfig, {"seed": "3"})  # nor a string
