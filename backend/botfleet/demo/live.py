"""``live``: a fake passivbot live bot on a seeded random-walk market.

Signals as passivbot: a SIGINT handler only (graceful shutdown, a second SIGINT forces exit
with code 130); SIGTERM keeps Python's default (immediate death). Logs
``%(asctime)s %(levelname)-8s %(message)s`` in UTC to stderr and ``logs/{user}.log``
(rotating 10 MB x 5) with passivbot's tags. Switches: see :mod:`botfleet.demo`.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from typing import Any

from botfleet.demo.common import (
    PASSIVBOT_VERSION,
    config_seed,
    env_float,
    env_int,
    exchange_of,
    load_config,
    section,
    side_coins,
)
from botfleet.demo.lines import LineLog

__all__ = ["run_live"]

LIVE_FORMAT = "%(asctime)s %(levelname)-8s %(message)s"
#: Seconds of lines the live bot writes at once when it fell behind; more are skipped.
CATCH_UP = 0.1
_PRICES = {
    "BTC": 60000.0,
    "ETH": 3000.0,
    "SOL": 150.0,
    "BNB": 600.0,
    "XMR": 160.0,
    "XRP": 0.6,
    "ADA": 0.45,
    "DOGE": 0.15,
    "TRX": 0.12,
    "LTC": 80.0,
}


class _Bot:
    """The fake bot's state: balance, positions, prices, counters."""

    def __init__(self, config: dict[str, Any], log: LineLog) -> None:
        live = section(config, "live")
        self.log = log
        self.user = str(live.get("user") or "bybit_01")
        self.exchange = exchange_of(self.user)
        self.coins = side_coins(live)
        if not self.coins["long"] and not self.coins["short"]:
            self.coins["long"] = ["BTC"]
        self.rng = random.Random(config_seed(config))
        self.balance = env_float("BOTFLEET_DEMO_BALANCE", 1000.0)
        self.prices = {
            c: _PRICES.get(c, 0.0) or self.rng.uniform(0.1, 100.0)
            for side in self.coins.values()
            for c in side
        }
        self.positions: dict[tuple[str, str], float] = {}
        self.leverage = live.get("leverage", 10)
        self.tick = 0
        self.fills = 0
        self.orders = 0
        self.started = time.monotonic()

    def boot(self, version: str, config_path: str) -> None:
        info = self.log.info
        info(
            "[boot] passivbot %s (botfleet stand-in) user=%s exchange=%s config=%s",
            PASSIVBOT_VERSION[version],
            self.user,
            self.exchange,
            config_path,
        )
        long, short = (",".join(self.coins[s]) or "-" for s in ("long", "short"))
        info("[boot] approved coins long=%s short=%s leverage=%s", long, short, self.leverage)
        info("[ws] connected %s (simulated market, no network)", self.exchange)
        self.log_balance()

    def log_balance(self) -> None:
        upnl = sum(q * self.prices[c] * 0.001 for (c, _), q in self.positions.items())
        self.log.info(
            "[balance] raw %.2f | snap %.2f | equity=%.2f source=ws",
            self.balance,
            round(self.balance, 0),
            self.balance + upnl,
        )

    def step(self) -> None:
        """One tick of the market and one log line."""
        self.tick += 1
        for coin in self.prices:
            self.prices[coin] *= 1.0 + self.rng.gauss(0.0, 0.002)
        if self.tick % 30 == 0:
            uptime = time.monotonic() - self.started
            self.log.info(
                "[health] uptime=%.0fs fills=%d orders=%d errors=0 ws=ok",
                uptime,
                self.fills,
                self.orders,
            )
        elif self.tick % 10 == 0:
            self.log_balance()
        elif self.tick % 3 == 0:
            self._fill()
        else:
            self._order()

    def _pick(self) -> tuple[str, str]:
        sides = [s for s in ("long", "short") if self.coins[s]]
        side = self.rng.choice(sides)
        return self.rng.choice(self.coins[side]), side

    def _order(self) -> None:
        coin, side = self._pick()
        price = self.prices[coin] * (0.995 if side == "long" else 1.005)
        qty = round(10.0 / price, 6) or 0.000001
        buy = "buy" if side == "long" else "sell"
        self.orders += 1
        self.log.info(
            "[order] create %s %s entry_grid_normal_%s %s %s @ %.6g post_only",
            coin,
            side,
            side,
            buy,
            qty,
            price,
        )

    def _fill(self) -> None:
        coin, side = self._pick()
        price, old = self.prices[coin], self.positions.get((coin, side), 0.0)
        closing = old > 0 and self.rng.random() < 0.4
        qty = old if closing else round(10.0 / price, 6) or 0.000001
        pnl = qty * price * self.rng.uniform(0.001, 0.01) if closing else 0.0
        fee = qty * price * 0.0002
        self.balance += pnl - fee
        new = 0.0 if closing else old + qty
        self.positions[(coin, side)] = new
        self.fills += 1
        kind = f"close_grid_{side}" if closing else f"entry_grid_normal_{side}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.log.info(
            "[fill] %s %s %s %s %+g @ %.6g, pnl=%+.4f USDT, fee=%.4f USDT id=demo-%06d",
            stamp,
            coin,
            side,
            kind,
            -qty if closing else qty,
            price,
            pnl,
            fee,
            self.fills,
        )
        wel = new * price / max(self.balance, 1e-9)
        twel = sum(q * self.prices[c] for (c, _), q in self.positions.items()) / max(
            self.balance, 1e-9
        )
        action = "close" if closing else ("open" if old == 0 else "increase")
        self.log.info(
            "[pos] %s %s %s %g -> %g | WEL=%.3f TWEL=%.3f uPnL=%+.4f",
            action,
            coin,
            side,
            old,
            new,
            wel,
            twel,
            0.0,
        )


def _setup_log(user: str, level: str) -> LineLog:
    log = LineLog(sys.stderr, level)
    if os.environ.get("BOTFLEET_DEMO_LOG_FILE", "1").strip().lower() not in ("0", "false", "no"):
        log.rotate_to(os.path.join("logs", f"{user}.log"), 10 * 1024 * 1024, 5)
    return log


def _flood(count: int) -> None:
    pad = b"x" * env_int("BOTFLEET_DEMO_FLOOD_PAD", 0)
    pad = b" " + pad if pad else b""
    out = sys.stdout.buffer
    for start in range(1, count + 1, 1000):
        stop = min(start + 1000, count + 1)
        out.write(b"".join(b"flood %d%s\n" % (i, pad) for i in range(start, stop)))
        out.flush()


def run_live(config_path: str, *, log_level: str = "info", version: str = "v8") -> int:
    """Run the fake live bot until SIGINT (exit 0), a forced second SIGINT (130) or the
    crash switch (BOTFLEET_DEMO_EXIT_CODE). Returns the exit code."""
    config = load_config(config_path)
    live = section(config, "live")
    log = _setup_log(str(live.get("user") or "bybit_01"), log_level)
    bot = _Bot(config, log)
    sigints = 0
    ignore = os.environ.get("BOTFLEET_DEMO_IGNORE_SIGINT", "") == "1"
    # The loop waits on this instead of time.sleep, which PEP 475 resumes after a handler
    # that returns: a SIGINT then ends the wait at once, as passivbot's asyncio loop would.
    interrupted = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal sigints
        if ignore:
            log.warning("[shutdown] SIGINT received: ignored (BOTFLEET_DEMO_IGNORE_SIGINT=1)")
            return
        sigints += 1
        if sigints > 1:
            log.warning("[shutdown] second SIGINT: forcing exit")
            os._exit(130)
        log.info(
            "[shutdown] SIGINT received: cancelling orders and shutting down gracefully "
            "(send again to force)"
        )
        interrupted.set()

    signal.signal(signal.SIGINT, on_sigint)
    bot.boot(version, config_path)
    child = None
    if os.environ.get("BOTFLEET_DEMO_SPAWN_CHILD", "") == "1":
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1e9)"])
        log.info("[boot] helper process pid=%d", child.pid)
    flood = env_int("BOTFLEET_DEMO_FLOOD", 0)
    if flood > 0:
        _flood(flood)
        if os.environ.get("BOTFLEET_DEMO_FLOOD_EXIT", "") == "1":
            return 0
    rate = env_float("BOTFLEET_DEMO_LINES_PER_SEC", 1.0)
    crash_after = env_float("BOTFLEET_DEMO_CRASH_AFTER", -1.0)
    # Paced by lines written (a fill writes two), not by steps; every line that is due is
    # written at each wake-up, so 10,000 lines/s are reached even though one sleep per line
    # is not possible at that rate. Lines more than CATCH_UP s behind (a slow pipe, a stall)
    # are skipped: no burst to catch up.
    begin = time.monotonic() - (1.0 / rate if rate > 0 else 0.0)
    written = log.lines
    while not sigints:
        now = time.monotonic()
        if crash_after >= 0 and now - bot.started >= crash_after:
            return _crash(log, crash_after)
        wait = 0.25
        if rate > 0:
            due = (now - begin) * rate - (log.lines - written)
            if due > max(1.0, rate * CATCH_UP):
                begin, written, due = now - 1.0 / rate, log.lines, 1.0
            while due >= 1.0 and not sigints:
                bot.step()
                due = (now - begin) * rate - (log.lines - written)
            wait = begin + (log.lines - written + 1) / rate - time.monotonic()
        interrupted.wait(max(0.0, min(wait, 0.25)))
    return _shutdown(bot, child)


def _shutdown(bot: _Bot, child: Any) -> int:
    deadline = time.monotonic() + env_float("BOTFLEET_DEMO_SHUTDOWN_SECONDS", 0.2)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    if child is not None:
        child.terminate()
        child.wait()
    bot.log.info("[shutdown] cancelled %d open orders; stopped %s", bot.orders, bot.exchange)
    bot.log.info("[shutdown] done")
    return 0


def _crash(log: LineLog, after: float) -> int:
    log.error(
        "[health] fatal error after %.1fs: RuntimeError: simulated crash "
        "(BOTFLEET_DEMO_CRASH_AFTER)",
        after,
    )
    sys.stderr.write(
        "Traceback (most recent call last):\n"
        f'  File "{__file__}", line 1, in run_live\n'
        "RuntimeError: simulated crash (BOTFLEET_DEMO_CRASH_AFTER)\n"
    )
    sys.stderr.flush()
    return env_int("BOTFLEET_DEMO_EXIT_CODE", 1)
