"""Config documents: passivbot's own examples are accepted, mistakes are named precisely."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from botfleet.profiles import (
    ConfigError,
    apply_overrides,
    detect_passivbot_version,
    get_profile,
    parse_document,
)

DATA = Path(__file__).parents[1] / "data" / "passivbot"
V7_FILES = sorted((DATA / "v7").glob("*.json"))
V8_FILES = sorted((DATA / "v8").glob("*.json"))


def load(version: str, name: str) -> dict[str, Any]:
    return json.loads((DATA / version / name).read_text())


def test_the_example_configs_are_all_there() -> None:
    names = {p.name for p in V8_FILES}
    assert {"suite_example.json", "hsl_npos1.json", "ema_anchor.json"} <= names
    assert len(V7_FILES) >= 6


@pytest.mark.parametrize("path", V7_FILES, ids=lambda p: p.name)
def test_every_v7_example_is_accepted_by_passivbot_v7(path: Path) -> None:
    profile = get_profile("passivbot-v7")
    document = profile.parse_config(path.read_text())
    assert profile.validate_config(document) == json.loads(path.read_text())
    assert profile.validate_config(document, purpose="backtest") is document


@pytest.mark.parametrize("path", V8_FILES, ids=lambda p: p.name)
def test_every_v8_example_is_accepted_by_passivbot_v8(path: Path) -> None:
    profile = get_profile("passivbot-v8")
    document = profile.parse_config(path.read_text())
    for purpose in (None, "live", "backtest", "optimize"):
        assert profile.validate_config(document, purpose=purpose) is document


@pytest.mark.parametrize("path", V7_FILES, ids=lambda p: p.name)
def test_a_v7_config_given_to_v8_says_which_profile_to_use(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("passivbot-v8").validate_config(json.loads(path.read_text()))
    assert "passivbot-v7" in str(info.value)
    assert "migrate-config-v7" in str(info.value)


@pytest.mark.parametrize("path", V8_FILES, ids=lambda p: p.name)
def test_a_v8_config_given_to_v7_says_which_profile_to_use(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("passivbot-v7").validate_config(json.loads(path.read_text()))
    assert "use profile passivbot-v8" in str(info.value)


def test_version_is_read_from_config_version_before_the_shape() -> None:
    assert detect_passivbot_version({"config_version": "v7.12.0", "bot": {}}) == "v7"
    assert detect_passivbot_version({"config_version": "v8.2.0"}) == "v8"
    assert detect_passivbot_version({"bot": {"long": {"risk": {}}, "short": {}}}) == "v8"
    assert detect_passivbot_version({"bot": {"long": {"n_positions": 1}}}) == "v7"
    assert detect_passivbot_version({"bot": {"long": {}, "short": {}}}) is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"live": {"user": "a",}', "line 1"),
        ('{\n  "bot": {\n    "long": [1, 2\n  }\n}', "line 4"),
        ("{\n a: 1\n b: [1,2\n}", "line 4 column 1"),
    ],
)
def test_malformed_text_gives_a_config_error_with_its_position(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("passivbot-v8").parse_config(text)
    assert info.value.key == ""
    assert where in str(info.value)
    assert "column" in str(info.value)


@pytest.mark.parametrize("text", ["[1, 2]", '"just a string"', "42"])
def test_a_config_that_is_not_an_object_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="object"):
        parse_document(text)


def test_hjson_with_comments_and_unquoted_keys_is_accepted() -> None:
    text = """
    # a passivbot config written by hand
    {
      live: {
        user: "binance_01"   // the account (quoteless strings run to the end of the line)
        approved_coins: ["BTC", "ETH"]
      }
      bot: {long: {n_positions: 2, total_wallet_exposure_limit: 1.5}, short: {n_positions: 0}}
    }
    """
    profile = get_profile("passivbot-v7")
    document = profile.validate_config(profile.parse_config(text), purpose="live")
    assert document["live"]["user"] == "binance_01"
    assert type(document["live"]) is dict
    assert document["bot"]["long"]["total_wallet_exposure_limit"] == 1.5


def _broken(version: str, path: str, value: Any) -> dict[str, Any]:
    document = load(version, "btc_long.json")
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("version", "path", "value", "key"),
    [
        ("v8", "bot", _DELETE, "bot"),
        ("v8", "bot.short", _DELETE, "bot.short"),
        ("v8", "bot.long", [1], "bot.long"),
        ("v8", "live", _DELETE, "live"),
        ("v8", "live.user", "", "live.user"),
        ("v8", "live.user", 17, "live.user"),
        ("v8", "live.approved_coins", 5, "live.approved_coins"),
        ("v8", "live.approved_coins", {"long": [1], "short": []}, "live.approved_coins.long[0]"),
        ("v8", "live.approved_coins", {"up": ["BTC"]}, "live.approved_coins.up"),
        ("v8", "live.leverage", "10", "live.leverage"),
        ("v8", "bot.long.risk.n_positions", "3", "bot.long.risk.n_positions"),
        (
            "v8",
            "bot.short.risk.total_wallet_exposure_limit",
            True,
            "bot.short.risk.total_wallet_exposure_limit",
        ),
        ("v8", "bot.long.risk", 1.0, "bot.long.risk"),
        ("v8", "backtest.exchanges", "binance", "backtest.exchanges"),
        ("v8", "optimize.iters", "many", "optimize.iters"),
        ("v7", "bot.long.n_positions", "one", "bot.long.n_positions"),
        ("v7", "bot.short.ema_span_0", None, "bot.short.ema_span_0"),
        ("v7", "live.user", ["bybit_01"], "live.user"),
        ("v7", "backtest.start_date", 20200101, "backtest.start_date"),
    ],
)
def test_missing_or_ill_typed_keys_are_named(version: str, path: str, value: Any, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_profile(f"passivbot-{version}").validate_config(_broken(version, path, value))
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_live_needs_the_account_but_a_stored_config_does_not() -> None:
    suite = load("v7", "suite_example.json")  # passivbot fills live.user from its template
    profile = get_profile("passivbot-v7")
    assert profile.validate_config(suite) is suite
    with pytest.raises(ConfigError) as info:
        profile.validate_config(suite, purpose="live")
    assert info.value.key == "live.user"
    assert "api-keys.json" in info.value.message


@pytest.mark.parametrize(
    ("purpose", "section"), [("backtest", "backtest"), ("optimize", "optimize")]
)
def test_jobs_need_their_sections(purpose: str, section: str) -> None:
    document = _broken("v8", section, _DELETE)
    get_profile("passivbot-v8").validate_config(document)
    with pytest.raises(ConfigError) as info:
        get_profile("passivbot-v8").validate_config(document, purpose=purpose)
    assert info.value.key == section


@pytest.mark.parametrize(
    "coins",
    [
        ["BTC", "ETH"],
        "configs/approved_coins.json",
        "all",
        {"long": "all", "short": []},
        {"long": ["BTC/USDT:USDT"], "short": ["ETH"]},
    ],
)
def test_approved_coins_take_every_form_passivbot_reads(coins: Any) -> None:
    document = _broken("v8", "live.approved_coins", coins)
    assert get_profile("passivbot-v8").validate_config(document, purpose="live") is document


def test_unknown_keys_pass() -> None:
    document = load("v8", "btc_long.json")
    document["live"]["some_future_option"] = {"anything": [1, "x"]}
    document["bot"]["long"]["risk"]["new_param"] = "text"
    document["my_notes"] = "kept"
    assert get_profile("passivbot-v8").validate_config(document) is document


def test_overrides_are_deep_merged_by_dotted_keys() -> None:
    document = load("v8", "btc_long.json")
    before = copy.deepcopy(document)
    result = apply_overrides(
        document,
        {
            "backtest.start_date": "2024-01-01",
            "optimize.iters": 100,
            "bot.long.risk": {"n_positions": 3.0},
            "live": {"leverage": 5},
        },
    )
    assert result["backtest"]["start_date"] == "2024-01-01"
    assert result["optimize"]["iters"] == 100
    assert result["bot"]["long"]["risk"]["n_positions"] == 3.0
    assert result["bot"]["long"]["risk"]["total_wallet_exposure_limit"] == 4.36
    assert result["live"]["leverage"] == 5
    assert document == before, "the input document is not changed"


@pytest.mark.parametrize(
    ("overrides", "key", "hint"),
    [
        ({"backtest.start_dat": "2024-01-01"}, "backtest.start_dat", "backtest.start_date"),
        ({"optimise.iters": 5}, "optimise", "optimize"),
        ({"optimize.iters": "100"}, "optimize.iters", "same type"),
        ({"backtest.exchanges": "binance"}, "backtest.exchanges", "same type"),
        ({"live.user.name": "x"}, "live.user.name", "no such key"),
        (
            {"bot": {"long": {"risk": {"n_positions": [1]}}}},
            "bot.long.risk.n_positions",
            "same type",
        ),
        ({"": 1}, "", "dotted"),
    ],
)
def test_bad_override_keys_are_rejected(overrides: dict[str, Any], key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(load("v8", "btc_long.json"), overrides)
    assert info.value.key == key
    assert hint in str(info.value)
