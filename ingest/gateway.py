"""Run a gateway from its configuration: the BLE ingester, its spool and the store, until stopped.

The store is opened with synchronous=FULL: the spool forgets a chunk once the store has it, so
the store's commit must survive a power cut too, not only a killed process.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

from ingest.central import Backend, Ingester, SensorStatus, SensorTarget
from ingest.lockfile import exclusive
from ingest.spool import Spool
from limbwatch.config import GatewayConfig
from limbwatch.errors import BadInput, LimbwatchError, Unavailable
from limbwatch.logs import setup_logging
from limbwatch.settings import CONFIG_ENV, config_path, load_settings
from limbwatch.store.open import open_gateway_stores, records_path
from limbwatch.store.records import GatewayRecords, SensorAssignment, Subject
from limbwatch.store.remote import is_remote

log = logging.getLogger(__name__)

# Real seconds a store call waits for another process's lock before it fails (and is retried):
# short, so that stopping never waits long on a worker thread.
STORE_BUSY_S = 1.0
REGISTER_RETRY_MAX_S = 60.0  # backoff cap, real s, while the store cannot be reached at start
CLOSE_ADAPTER_S = 1.0  # real seconds to disconnect the sensors and close the adapter at the end


@asynccontextmanager
async def open_gateway(config: GatewayConfig) -> AsyncIterator[Ingester]:
    """An Ingester wired to the configured backend, spool and store, holding the spool's lock
    (Refused if another gateway has it); closes them all after."""
    if not is_remote(config.store_url):
        records_path(config.store_url).parent.mkdir(parents=True, exist_ok=True)
    config.spool_path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        held.enter_context(exclusive(config.spool_path))
        store, records = open_gateway_stores(config.store_url, timeout_s=STORE_BUSY_S)
        held.callback(store.close)
        if records is not store:
            held.callback(records.close)
        registering = await start_registering(records, config)
        held.callback(registering.cancel)
        spool = held.enter_context(Spool(config.spool_path))
        backend = Backend()
        close_adapter: Callable[[], Awaitable[None]] | None = None
        if config.transport is not None:
            from ingest import bumble_backend

            scanner, client = bumble_backend.bumble_backend(
                bumble_backend.BumbleTransport(config.transport))
            backend = Backend(scanner=scanner, client=client,
                              reset=bumble_backend.reset_adapter)
            close_adapter = bumble_backend.close_adapter
        try:
            yield Ingester(
                [SensorTarget(s.subject, s.side, s.name, s.serial) for s in config.sensors],
                backend=backend, clock=config.clock, spool=spool, store=store, records=records,
                state_path=config.state_path, sync_interval_s=config.sync_interval_s,
            )
        finally:
            if close_adapter is not None:
                closing = asyncio.ensure_future(close_adapter())
                if not (await asyncio.wait({closing}, timeout=CLOSE_ADAPTER_S))[0]:
                    closing.cancel()
                    log.warning("the BLE adapter did not close within %g s", CLOSE_ADAPTER_S)


def register_sensors(records: GatewayRecords, config: GatewayConfig) -> None:
    """Record which leg of which subject each configured sensor is on; a subject the record
    store does not know yet is added under its id, in UTC (`limbwatch subject` sets its name,
    birth date and time zone; on a central server only its admin can add one)."""
    for subject_id in dict.fromkeys(s.subject for s in config.sensors):
        sensors = tuple(SensorAssignment(s.serial, s.side) for s in config.sensors
                        if s.subject == subject_id)
        known = records.subject(subject_id)
        if known is None:
            records.put_subject(Subject(subject_id, subject_id, None, "UTC", sensors))
        elif set(known.sensors) != set(sensors):
            records.put_subject(replace(known, sensors=sensors))


async def start_registering(records: GatewayRecords, config: GatewayConfig
                            ) -> asyncio.Future[None]:
    """`register_sensors` now, or, while the store cannot be reached (a central server not up
    yet), in the background every 1 s doubling to 60 s (the spool keeps what is collected
    meanwhile). Anything else it raises: a subject the server does not know, a wrong token."""
    try:
        await asyncio.to_thread(register_sensors, records, config)
    except Unavailable as exc:
        log.warning("cannot register the sensors yet: %s; collecting meanwhile", exc)
        return asyncio.ensure_future(_register_later(records, config))
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


async def _register_later(records: GatewayRecords, config: GatewayConfig) -> None:
    delay = 1.0
    while True:
        await asyncio.sleep(delay)
        try:
            await asyncio.to_thread(register_sensors, records, config)
        except LimbwatchError as exc:
            delay = min(2 * delay, REGISTER_RETRY_MAX_S)
            log.warning("cannot register the sensors: %s; again in %.0f s", exc, delay)
        else:
            log.info("sensors registered")
            return


async def run_gateway(config: GatewayConfig, stop: asyncio.Event,
                      report_every_s: float = 30.0,
                      metrics: tuple[str, int] | None = None) -> list[SensorStatus]:
    """Collect until `stop` is set, logging each sensor's status now and then; with `metrics`
    (host, port), serve Prometheus metrics there (`ingest.metrics`)."""
    names = {s.serial: s.name for s in config.sensors}
    async with open_gateway(config) as ingester:
        if metrics is not None:
            serve_metrics(ingester, config, *metrics)
        task = asyncio.create_task(ingester.run(stop))
        while not task.done():
            await asyncio.wait({task}, timeout=report_every_s)
            for s in ingester.status():
                log.info("%s %s: %s, %d packets, %d gaps open, %d lost, battery %s%%",
                         s.subject, s.side, "connected" if s.connected else "not connected",
                         s.packets, s.gaps_open, s.gaps_lost, s.battery_pct,
                         extra={"sensor": names.get(s.serial, s.serial), "subject": s.subject})
        await task
        return ingester.status()


def serve_metrics(ingester: Ingester, config: GatewayConfig, host: str, port: int) -> None:
    """Prometheus metrics of this gateway on http://host:port/ (a thread of its own)."""
    from prometheus_client import REGISTRY, start_http_server

    from ingest.metrics import GatewayCollector

    REGISTRY.register(GatewayCollector(ingester.status, lambda: len(ingester.spool),
                                       config.clock.now))
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise Unavailable(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of `limbwatch ingest --config FILE`: collect until SIGTERM or SIGINT. The settings
    (`limbwatch.settings`): the file, then the environment, then these options.

    Ends with one line on standard error and the status of `limbwatch.errors`: 2 a bad
    configuration (or a path that cannot be used), 3 a store or spool that cannot be used now
    (locked, disk full: retry later), 4 a damaged store or spool, 5 the spool is another
    gateway's. Once running, nothing but a signal ends it."""
    parser = argparse.ArgumentParser(prog="limbwatch ingest", description=__doc__)
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="settings file (TOML: a gateway file or limbwatch.toml; default "
                        f"${CONFIG_ENV}); environment overrides LIMBWATCH_<SECTION>_<KEY>")
    parser.add_argument("--log-every", type=float, default=30.0, help="status log period, s")
    parser.add_argument("--store", metavar="URL",
                        help="the store, instead of the file's [store] (sqlite:PATH or "
                        "influxdb://...; wins over $LIMBWATCH_STORE_URL)")
    parser.add_argument("--log-format", choices=["text", "json"],
                        help="log lines as text or JSON (default [logging] format, text)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--metrics-port", type=int, metavar="P",
                        help="serve Prometheus metrics on this port (ingest.metrics)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="H")
    args = parser.parse_args(argv)
    setup_logging()  # until the settings say otherwise

    async def run(config: GatewayConfig) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        metrics = None if args.metrics_port is None else (args.metrics_host, args.metrics_port)
        await run_gateway(config, stop, report_every_s=args.log_every, metrics=metrics)

    try:
        if config_path(args.config) is None:
            raise BadInput(f"no settings file: give --config FILE or set ${CONFIG_ENV}")
        loaded = load_settings(args.config, options={
            "store.url": ("--store", args.store),
            "logging.format": ("--log-format", args.log_format),
            "logging.level": ("--log-level", args.log_level),
        })
        setup_logging(loaded.settings.logging.level, loaded.settings.logging.format)
        asyncio.run(run(loaded.gateway_config()))
    except OSError as exc:  # a directory or lock file that cannot be made
        error: LimbwatchError = (Unavailable if exc.errno in _FULL else BadInput)(
            f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc))
    except ValueError as exc:  # ConfigError, NotAStore (BadInput) and other bad values
        error = exc if isinstance(exc, LimbwatchError) else BadInput(str(exc))
    except LimbwatchError as exc:
        error = exc
    else:
        return 0
    for line in str(error).splitlines():
        print(f"limbwatch ingest: {line}", file=sys.stderr)
    return error.exit_status


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk (or file size limit): retry later
