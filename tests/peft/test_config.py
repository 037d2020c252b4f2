import pytest

from kerastl.peft import PeftConfig


def test_lora_defaults_rank_8_and_scale_1():
    config = PeftConfig("lora")
    assert (config.rank, config.alpha, config.blocks, config.scale) == (8, None, "all", 1.0)
    assert PeftConfig("lora", rank=4, alpha=8).scale == 2.0


def test_bitfit_has_no_rank():
    assert PeftConfig("bitfit").rank is None and PeftConfig("bitfit").scale is None
    with pytest.raises(ValueError, match="`rank` is a LoRA setting"):
        PeftConfig("bitfit", rank=4)


@pytest.mark.parametrize("rank", [0, -2, 1.5, True])
def test_rank_below_one_or_not_int_is_refused(rank):
    with pytest.raises(ValueError, match=r"`rank` must be an integer >= 1\. Received: rank="):
        PeftConfig("lora", rank=rank)


def test_unknown_method_suggests_the_close_one():
    with pytest.raises(ValueError, match="Did you mean 'lora'"):
        PeftConfig("loar")


@pytest.mark.parametrize("blocks, expected", [("all", "all"), (3, 3), ("block_16", ("block_16",)),
                                              (["block_15", "block_16"], ("block_15", "block_16"))])
def test_blocks_forms(blocks, expected):
    assert PeftConfig("bn_affine", blocks=blocks).blocks == expected


@pytest.mark.parametrize("blocks", [0, [], [3], 2.5])
def test_bad_blocks_are_refused(blocks):
    with pytest.raises(ValueError, match="`blocks` must be"):
        PeftConfig("lora", blocks=blocks)


def test_from_value_forms():
    assert PeftConfig.from_value("bitfit") == PeftConfig("bitfit")
    assert PeftConfig.from_value({"method": "lora", "rank": 4}).rank == 4
    config = PeftConfig("lora", rank=2)
    assert PeftConfig.from_value(config) is config
    with pytest.raises(ValueError, match="must name its `method`"):
        PeftConfig.from_value({"rank": 4})
    with pytest.raises(ValueError, match="Unknown key|unknown|ranks"):
        PeftConfig.from_value({"method": "lora", "ranks": 4})
    with pytest.raises(ValueError, match="`peft` must be one of"):
        PeftConfig.from_value(4)


def test_to_dict_is_json_ready():
    assert PeftConfig("lora", rank=2, blocks=("a", "b")).to_dict() == {
        "method": "lora", "rank": 2, "alpha": None, "blocks": ["a", "b"]}
