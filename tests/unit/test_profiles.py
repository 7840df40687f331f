"""Profiles: command lines, stop ladders, progress parsing and results of passivbot runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from botfleet.db.models import JobKind
from botfleet.profiles import (
    PROFILES,
    ConfigError,
    UnavailableProfile,
    UnknownProfile,
    get_profile,
)
from botfleet.settings import Settings

DATA = Path(__file__).parents[1] / "data" / "passivbot"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_builtin_profiles_and_an_unknown_name() -> None:
    assert set(PROFILES) == {"passivbot-v7", "passivbot-v8", "custom"}
    with pytest.raises(UnknownProfile) as info:
        get_profile("passivbot-v9")
    assert "passivbot-v7, passivbot-v8" in str(info.value) and "custom" in str(info.value)


@pytest.mark.parametrize("name", ["passivbot-v7", "passivbot-v8"])
def test_passivbot_is_stopped_by_sigint_then_sigterm_then_sigkill(name: str) -> None:
    ladder = get_profile(name).stop_ladder
    assert [(s.signal, s.timeout) for s in ladder[:2]] == [("SIGINT", 10.0), ("SIGTERM", 5.0)]
    assert ladder[2].signal == "SIGKILL"
    assert get_profile(name).supports_jobs


def test_v8_live_command_runs_the_console_script() -> None:
    s = settings(passivbot_v8_command="/opt/pb/bin/passivbot")
    cmd = get_profile("passivbot-v8").live_command(
        config_path="config.json", simulated=False, settings=s
    )
    assert cmd.argv == ["/opt/pb/bin/passivbot", "live", "config.json"]
    assert cmd.env == {"PYTHONUNBUFFERED": "1"}
    sim = get_profile("passivbot-v8").live_command(config_path="c.json", simulated=True, settings=s)
    assert sim.argv == ["{python}", "-m", "botfleet.demo", "live", "c.json"]


def test_v7_live_command_runs_main_py_in_the_checkout(tmp_path: Path) -> None:
    s = settings(passivbot_v7_root=tmp_path, passivbot_v7_python="/venv/bin/python")
    cmd = get_profile("passivbot-v7").live_command(
        config_path="/i/c.json", simulated=False, settings=s
    )
    assert cmd.argv == ["/venv/bin/python", "-u", "src/main.py", "/i/c.json"]
    assert cmd.cwd == str(tmp_path)
    assert cmd.env["PYTHONUNBUFFERED"] == "1"
    sim = get_profile("passivbot-v7").live_command(
        config_path="/i/c.json", simulated=True, settings=s
    )
    assert sim.argv == ["{python}", "-u", "src/main.py", "/i/c.json"]
    assert sim.cwd == "{demo_v7_root}"


def test_v7_without_a_checkout_says_which_setting_to_set() -> None:
    profile = get_profile("passivbot-v7")
    with pytest.raises(UnavailableProfile, match="BOTFLEET_PASSIVBOT_V7_ROOT"):
        profile.live_command(config_path="c.json", simulated=False, settings=settings())
    with pytest.raises(UnavailableProfile, match="BOTFLEET_PASSIVBOT_V7_ROOT"):
        profile.job_command(
            JobKind.BACKTEST,
            config_path="c.json",
            job_dir="/j",
            simulated=False,
            settings=settings(),
        )
    cmd = profile.live_command(config_path="c.json", simulated=True, settings=settings())
    assert cmd.cwd == "{demo_v7_root}", "the stand-in needs no checkout"


@pytest.mark.parametrize("kind", [JobKind.BACKTEST, JobKind.OPTIMIZE])
def test_job_commands(kind: JobKind, tmp_path: Path) -> None:
    s = settings(passivbot_v7_root=tmp_path)
    v8 = get_profile("passivbot-v8").job_command(
        kind, config_path="c.json", job_dir="/jobs/1", simulated=False, settings=s
    )
    assert v8.argv == ["passivbot", kind.value, "c.json"] and v8.cwd == "/jobs/1"
    sim8 = get_profile("passivbot-v8").job_command(
        kind, config_path="c.json", job_dir="/jobs/1", simulated=True, settings=s
    )
    assert sim8.argv == ["{python}", "-m", "botfleet.demo", kind.value, "c.json"]
    v7 = get_profile("passivbot-v7").job_command(
        kind, config_path="c.json", job_dir="/jobs/1", simulated=False, settings=s
    )
    assert v7.argv == ["python3", "-u", f"src/{kind.value}.py", "c.json"] and v7.cwd == str(
        tmp_path
    )


def test_job_config_sends_results_into_the_job_dir(tmp_path: Path) -> None:
    document = json.loads((DATA / "v8" / "btc_long.json").read_text())
    profile = get_profile("passivbot-v8")
    a = profile.prepare_job_config(JobKind.BACKTEST, document, job_dir=str(tmp_path / "a"))
    b = profile.prepare_job_config(JobKind.BACKTEST, document, job_dir=str(tmp_path / "b"))
    assert a["backtest"]["base_dir"] == str(tmp_path / "a" / "backtests")
    assert a["backtest"]["base_dir"] != b["backtest"]["base_dir"]
    assert document["backtest"]["base_dir"] == "backtests", "the stored config is unchanged"
    with pytest.raises(ConfigError):
        profile.prepare_job_config(JobKind.OPTIMIZE, {"bot": {}}, job_dir=str(tmp_path))


def test_custom_argv_is_kept_literally_and_config_is_substituted() -> None:
    argv = ["./bot", "--config={config}", "; rm -rf / && echo $HOME", "`id`", "a b", "{config}"]
    cmd = get_profile("custom").live_command(
        config_path="/inst/c.json", simulated=False, settings=settings(), argv=argv
    )
    assert cmd.argv == [
        "./bot",
        "--config=/inst/c.json",
        "; rm -rf / && echo $HOME",
        "`id`",
        "a b",
        "/inst/c.json",
    ]
    assert argv[1] == "--config={config}", "the caller's list is not modified"


@pytest.mark.parametrize(
    ("argv", "key"), [(None, "argv"), ([], "argv"), (["x", ""], "argv[1]"), (["x", 3], "argv[1]")]
)
def test_custom_argv_must_be_non_empty_strings(argv: Any, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("custom").live_command(
            config_path="c", simulated=False, settings=settings(), argv=argv
        )
    assert info.value.key == key


def test_custom_takes_any_object_runs_no_jobs_and_stops_with_sigterm() -> None:
    custom = get_profile("custom")
    assert custom.validate_config({"anything": [1, 2]}) == {"anything": [1, 2]}
    assert not custom.supports_jobs
    assert [s.signal for s in custom.stop_ladder] == ["SIGTERM", "SIGKILL"]
    assert custom.stop_ladder[0].timeout == 10.0
    with pytest.raises(UnavailableProfile):
        custom.job_command(
            JobKind.BACKTEST, config_path="c", job_dir="/j", simulated=False, settings=settings()
        )


PREFIX = "2026-08-22T12:34:56Z MainProcess  INFO     "


def test_optimize_progress_from_real_format_lines() -> None:
    parser = get_profile("passivbot-v8").progress_parser(
        JobKind.OPTIMIZE, {"optimize": {"iters": 1000}}
    )
    assert parser.feed(PREFIX + "loading config") is None
    start = parser.feed(PREFIX + "Starting optimize...")
    assert start is not None and start.fraction == 0.0
    seeded = parser.feed(PREFIX + "Evaluated 2/5 starting configs")
    assert seeded is not None and seeded.phase == "starting configs"
    assert seeded.detail["starting_configs"] == 2 and seeded.detail["starting_configs_total"] == 5
    it = parser.feed(
        PREFIX + "Iter: 250 | Pareto ↑ | +3/-1 | size:12 | adg:(0.001,0.002) | dd:(0.1,0.3)"
    )
    assert it is not None and it.fraction == 0.25 and it.detail["front_size"] == 12
    assert it.detail["evaluations"] == 250 and it.detail["iters"] == 1000
    upd = parser.feed(
        "2026-08-22T12:35:00.123456Z "
        + PREFIX
        + "Pareto update | eval=500 | front=14 | objectives=[adg, dd]"
    )
    assert upd is not None and upd.fraction == 0.5 and upd.detail["front_size"] == 14
    gen = parser.feed(PREFIX + "Gen 7 complete | evals=100 | total=700 | front=15 | elapsed=12.5s")
    assert gen is not None and gen.fraction == 0.7
    assert gen.detail["generation"] == 7 and gen.detail["front_size"] == 15
    over = parser.feed(PREFIX + "Iter: 5000 | Pareto ↑ | +1/-0 | size:16 | adg:(0.001,0.002)")
    assert over is not None and over.fraction == 1.0, "clamped to 1"
    done = parser.feed(PREFIX + "Optimization complete.")
    assert done is not None and done.fraction == 1.0 and done.phase == "complete"


def test_optimize_fraction_never_goes_down() -> None:
    parser = get_profile("passivbot-v7").progress_parser(
        JobKind.OPTIMIZE, {"optimize": {"iters": 100}}
    )
    parser.feed("Iter: 60 | Pareto ↑ | +1/-0 | size:3 | a:(1,2)")
    late = parser.feed("Pareto update | eval=40 | front=3 | objectives=[a]")
    assert late is not None and late.fraction == 0.6


def test_backtest_phases_from_real_format_lines() -> None:
    document = {"backtest": {"exchanges": ["binance", "bybit"]}}
    parser = get_profile("passivbot-v8").progress_parser(JobKind.BACKTEST, document)
    first = parser.feed("2026-08-22T12:34:56Z INFO     Backtesting binance...")
    assert first is not None and first.phase == "backtesting binance" and first.fraction == 0.0
    second = parser.feed("2026-08-22T12:34:58Z INFO     Backtesting bybit...")
    assert second is not None and second.fraction == 0.5
    combined = parser.feed("Backtesting combined...")
    assert combined is not None and combined.phase == "backtesting combined"
    analysis = parser.feed("seconds elapsed for backtest: 12.3456")
    assert analysis is not None and analysis.phase == "analysis"
    assert analysis.detail["backtest_seconds"] == 12.3456
    download = parser.feed("2026-08-22T12:34:56Z INFO     downloading ohlcvs binance BTC 45%")
    assert download is not None and download.detail["download_percent"] == 45.0


def _optimize_run(root: Path, name: str, base_dir: str) -> Path:
    run = root / "optimize_results" / name
    (run / "pareto").mkdir(parents=True)
    config = {"backtest": {"base_dir": base_dir}, "analysis": {"adg": 0.001}}
    (run / "pareto" / "abc123.json").write_text(json.dumps(config))
    (run / "initial_config.json").write_text(json.dumps({"backtest": {"base_dir": base_dir}}))
    (run / "all_results.bin").write_bytes(b"{}\n")
    return run


def test_v7_optimize_results_are_found_by_the_jobs_base_dir_and_moved_in(tmp_path: Path) -> None:
    root, job_dir, other_job = tmp_path / "v7", tmp_path / "jobs" / "1", tmp_path / "jobs" / "2"
    job_dir.mkdir(parents=True)
    other = _optimize_run(
        root, "2026-01-01T00_00_00_binance_30days_BTC_aaaa", str(other_job / "backtests")
    )
    _optimize_run(root, "2026-01-01T00_00_01_binance_30days_BTC_bbbb", str(job_dir / "backtests"))
    results = get_profile("passivbot-v7").read_results(JobKind.OPTIMIZE, job_dir, roots=[root])  # type: ignore[call-arg]
    assert (
        results.summary["results_dir"]
        == "optimize_results/2026-01-01T00_00_01_binance_30days_BTC_bbbb"
    )
    assert results.summary["pareto"] == [
        {
            "hash": "abc123",
            "analysis": {"adg": 0.001},
            "config_path": f"{results.summary['results_dir']}/pareto/abc123.json",
        }
    ]
    assert f"{results.summary['results_dir']}/all_results.bin" in results.artifacts
    assert other.is_dir(), "another job's results stay where they are"


def test_reading_results_of_a_job_that_wrote_none_raises(tmp_path: Path) -> None:
    for kind in (JobKind.BACKTEST, JobKind.OPTIMIZE):
        with pytest.raises(FileNotFoundError):
            get_profile("passivbot-v8").read_results(kind, tmp_path)
