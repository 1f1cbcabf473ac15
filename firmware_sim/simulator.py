"""`limbwatch sim`: simulated sensors on an emulated radio, reachable over HCI for an ingester.

One process hosts every sensor of a rig file (both legs; several children if the rig lists
them): each is a `SensorPeripheral` on one shared `Radio`, sampling on a `SimClock` that may run
faster than real time. Each TCP client of the HCI endpoint gets its own emulated central
controller, so an ingester connects with `BumbleTransport("tcp-client:HOST:PORT")` (see
`ingest.bumble_backend`). When ready the endpoint is printed as `HCI tcp://HOST:PORT`. Runs until
SIGTERM or SIGINT.

    python -m firmware_sim.simulator --rig firmware_sim/rigs/demo.toml --speed 60 --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from firmware_sim.peripheral import SensorPeripheral, address_for
from firmware_sim.radio import HciEndpoint, Radio
from firmware_sim.rig import load_rig
from firmware_sim.sensor import Sensor, SensorConfig
from limbwatch.simclock import SimClock

logger = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
_CANCEL_RETRY_S = 5.0


@dataclass(frozen=True, slots=True)
class OnAir:
    """Sensors advertising on a radio, sampling on their clock."""

    radio: Radio
    sensors: list[Sensor]
    sampling: asyncio.Future[list[None]]  # done when every sensor's night has ended


@contextlib.asynccontextmanager
async def on_air(rig_configs: list[SensorConfig], clock: SimClock) -> AsyncIterator[OnAir]:
    """A radio with one peripheral per sensor, the sensors sampling; all torn down after."""
    addresses = {config.serial: address_for(config.serial) for config in rig_configs}
    if len(set(addresses.values())) != len(addresses):
        raise ValueError("two sensor serials map to one BLE address: rename one of them")
    radio = Radio()
    sensors = [Sensor(config, clock) for config in rig_configs]
    peripherals = [SensorPeripheral(s, radio, addresses[s.config.serial]) for s in sensors]
    sampling: asyncio.Future[list[None]] | None = None
    try:
        for peripheral in peripherals:
            await peripheral.start()
        sampling = asyncio.gather(*(sensor.run() for sensor in sensors))
        yield OnAir(radio, sensors, sampling)
    finally:
        if sampling is not None:
            sampling.cancel()
        for peripheral in peripherals:
            await peripheral.stop()
        await radio.close()


async def serve(
    rig_configs: list[SensorConfig],
    clock: SimClock,
    host: str,
    port: int,
    *,
    on_ready: Callable[[HciEndpoint], None] | None = None,
    truth_dir: Path | None = None,
) -> None:
    """Run the sensors and serve HCI on `host:port` until cancelled (`port=0`: any free port).

    `on_ready` gets the bound endpoint once every sensor advertises and the port listens. A
    sensor whose firmware fails ends the simulation with its exception. At the end, each
    sensor's record of what it measured goes to `truth_dir/<side>.csv` (the ground truth).
    """
    air: OnAir | None = None
    try:
        async with on_air(rig_configs, clock) as air:
            endpoint = await air.radio.serve_hci(host, port)
            logger.info("%d sensors on HCI %s:%d", len(air.sensors), endpoint.host,
                        endpoint.port)
            if on_ready is not None:
                on_ready(endpoint)
            await air.sampling  # the nights end; the sensors stay up for backfill
            logger.info("every sensor has finished its night")
            await asyncio.Future()
    finally:
        if truth_dir is not None and air is not None:
            truth_dir.mkdir(parents=True, exist_ok=True)
            for sensor in air.sensors:
                sensor.write_truth_csv(truth_dir / f"{sensor.config.side}.csv")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limbwatch sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rig", type=Path, required=True, help="rig file (TOML) of the sensors")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second (default 1)")
    p.add_argument("--start", type=float, metavar="UNIX_S",
                   help="sim UTC at which the clock and the night start (default: now)")
    p.add_argument("--anchor", type=float, metavar="UNIX_S",
                   help="host wall time at which sim time is --start (default: now); another "
                        "process given the same start, speed and anchor shares the clock")
    p.add_argument("--truth-dir", type=Path,
                   help="at exit, write each sensor's measured samples to DIR/<side>.csv")
    p.add_argument("--host", default="127.0.0.1", help="HCI listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="HCI TCP port (default 0: any free one)")
    return p


def _announce(endpoint: HciEndpoint) -> None:
    print(f"HCI tcp://{endpoint.host}:{endpoint.port}", flush=True)


async def _run(configs: list[SensorConfig], clock: SimClock, host: str, port: int,
               truth_dir: Path | None) -> None:
    """`serve` until SIGTERM or SIGINT, then cancel it and let it shut down."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(
        serve(configs, clock, host, port, on_ready=_announce, truth_dir=truth_dir))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    # On Python 3.11 a cancel that lands while Bumble awaits an HCI response can be lost:
    # repeat it until serve() is done.
    while not serving.done():
        serving.cancel()
        await asyncio.wait({serving}, timeout=_CANCEL_RETRY_S)
    with contextlib.suppress(asyncio.CancelledError):
        serving.result()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of `limbwatch sim`; bad input ends with one line on stderr and status 2."""
    args = _parser().parse_args(argv)
    if not args.speed > 0:
        print(f"limbwatch sim: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return EXIT_BAD_INPUT
    start = time.time() if args.start is None else args.start
    try:
        configs = load_rig(args.rig, night_start=start)
        clock = SimClock(start=start, speed=args.speed,
                         anchor=time.time() if args.anchor is None else args.anchor)
        asyncio.run(_run(configs, clock, args.host, args.port, args.truth_dir))
    except (ValueError, OSError) as exc:  # RigError, ConfigError, scenario errors, bind errors
        print(f"limbwatch sim: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
