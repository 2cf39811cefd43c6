"""`mlmesh sensors`: replay a CSV of timestamped readings into a learner, live-paced or flat out.

    mlmesh sensors replay power.csv --learner <uuid> --rate 50               # a Learn stream (gRPC)
    mlmesh sensors replay power.csv --mqtt mqtt://127.0.0.1:1883 --as-fast-as-possible

Over gRPC (default, through the front door or `--target`) it opens one Learn stream, writes the
readings in batches (`--batch` per message) and reads the acknowledgements as they come; at the end
it prints what the learner learned, its losses and any model versions it saved. With `--mqtt` it
publishes each reading as `{"time": "<RFC 3339>", "value": <number>}` on `<prefix>/<sensor_id>`
(QoS 1, in order), where the MQTT bridge (servers/learner/mqtt_bridge.py) picks them up. Format:
docs/sensors.md. The CSV is checked completely before anything is sent.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import math
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

import grpc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from clients import session

sensors_app = typer.Typer(help="Sensor readings: replay a CSV into a learner over gRPC or through an MQTT "
                               "broker.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # errors stay one line each, for grep and logs


@sensors_app.callback()
def _group() -> None:
    """Sensor readings for online learners (power-forecast transformer)."""


class CsvError(Exception):
    """The CSV cannot be replayed; the message names the file, the line and what to fix."""


@dataclass(frozen=True)
class Row:
    line: int
    time: dt.datetime  # tz-aware
    value: float


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip())
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def read_rows(path: Path, time_column: str, value_column: str, limit: int | None = None) -> Iterator[Row]:
    """Readings of the CSV in file order; times without an offset are taken as UTC. Raises CsvError."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in (time_column, value_column) if c not in header]
        if missing:
            names = ", ".join(repr(h) for h in header if h) or "none (the file is empty)"
            raise CsvError(f"{path}: no column {' or '.join(map(repr, missing))}; its columns are {names} "
                           "(choose them with --time-column and --value-column)")
        ti, vi = header.index(time_column), header.index(value_column)
        count = 0
        previous: Row | None = None
        for row in reader:
            if limit is not None and count >= limit:
                return
            if not row or all(not cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) <= max(ti, vi):
                raise CsvError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
            try:
                when = _time(row[ti])
            except (ValueError, OverflowError):
                raise CsvError(f"{path} line {line}: {time_column} {row[ti]!r} is not an ISO 8601 time such as "
                               "2024-03-04T00:15:00") from None
            try:
                value = float(row[vi])
            except ValueError:
                raise CsvError(f"{path} line {line}: {value_column} {row[vi]!r} is not a number") from None
            if not math.isfinite(value):
                raise CsvError(f"{path} line {line}: {value_column} {row[vi]!r} is not a finite number")
            if previous is not None and when <= previous.time:
                raise CsvError(f"{path} line {line}: {time_column} {row[ti]!r} is not after the previous reading's "
                               f"({previous.time.isoformat()}, line {previous.line}); a learner takes a sensor's "
                               "readings in time order")
            count += 1
            previous = Row(line, when, value)
            yield previous


def observation(row: Row, sensor_id: str, *, scale: float = 1.0):
    """A reading as a learner observation (`scale` multiplies the value, for what-if replays)."""
    from mlmesh.learner.v1 import learner_service_pb2 as pb

    from servers.common.timestamps import timestamp_to_proto

    return pb.Observation(reading=pb.SensorReading(sensor_id=sensor_id, time=timestamp_to_proto(row.time),
                                                   value=row.value * scale))


def check_csv(path: Path, time_column: str, value_column: str, limit: int | None = None) -> int:
    """Reads the whole CSV once (memory stays flat) and returns its number of readings; raises CsvError."""
    n = sum(1 for _ in read_rows(path, time_column, value_column, limit))
    if n == 0:
        raise CsvError(f"{path}: no readings after the header")
    return n


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def reading_payload(row: Row) -> bytes:
    """The MQTT message of one reading (docs/sensors.md)."""
    return json.dumps({"time": rfc3339(row.time), "value": row.value}).encode()


def broker_params(url: str) -> dict:
    """aiomqtt.Client arguments for mqtt://[user:password@]host[:port] (1883) or mqtts://... (TLS, 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    params: dict = {"hostname": parts.hostname, "port": parts.port or (8883 if parts.scheme == "mqtts" else 1883)}
    if parts.username:
        params.update(username=unquote(parts.username), password=unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        params["tls_context"] = ssl.create_default_context()
    return params


class Pacer:
    """Reading i is due `i / rate` seconds after the first one (no drift); rate None: never waits."""

    def __init__(self, rate: float | None):
        self.rate = rate
        self.start = time.monotonic()

    async def wait(self, index: int) -> None:
        if self.rate:
            delay = self.start + index / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


@dataclass
class LearnResult:
    sent: int = 0
    messages: int = 0
    last: object | None = None  # the last LearnResponse
    saved: list = field(default_factory=list)  # SavedVersion messages


async def replay_grpc(rows: Iterator[Row], *, target: str, token: str | None, learner_id: str, sensor_id: str,
                      rate: float | None, batch: int, on_sent=None, on_ack=None) -> tuple[object, LearnResult]:
    """Streams `rows` into one Learn call; returns (the learner before, LearnResult). Raises grpc.RpcError."""
    from mlmesh.learner.v1 import learner_service_pb2 as pb
    from mlmesh.learner.v1 import learner_service_pb2_grpc as pb_grpc

    metadata = session.metadata(token)
    result = LearnResult()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.LearnerServiceStub(channel)
        learner = await stub.GetLearner(pb.GetLearnerRequest(learner_id=learner_id), metadata=metadata, timeout=30)
        queue: asyncio.Queue[Row | None] = asyncio.Queue(maxsize=4 * batch)
        call = stub.Learn(metadata=metadata)

        async def pace() -> None:
            pacer = Pacer(rate)
            for i, row in enumerate(rows):
                await pacer.wait(i)
                await queue.put(row)
            await queue.put(None)

        async def write() -> None:
            done = False
            while not done:
                first = await queue.get()
                taken = [] if first is None else [first]
                done = first is None
                while not done and len(taken) < batch and not queue.empty():
                    row = queue.get_nowait()
                    done = row is None
                    if row is not None:
                        taken.append(row)
                if taken:
                    await call.write(pb.LearnRequest(learner_id=learner_id, observations=[
                        observation(r, sensor_id) for r in taken]))
                    result.sent += len(taken)
                    result.messages += 1
                    if on_sent:
                        on_sent(len(taken))
            await call.done_writing()

        async def read() -> None:
            async for ack in call:
                result.last = ack
                if ack.HasField("saved"):
                    result.saved.append(ack.saved)
                if on_ack:
                    on_ack(ack)

        tasks = [asyncio.create_task(c) for c in (pace(), write(), read())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            call.cancel()
    return learner, result


async def replay_mqtt(rows: Iterator[Row], *, url: str, topic: str, rate: float | None, qos: int = 1,
                      on_sent=None) -> int:
    """Publishes each reading on `topic`, in order, each acknowledged by the broker (QoS 1) before the
    next; returns how many. Raises aiomqtt.MqttError."""
    import aiomqtt

    sent = 0
    async with aiomqtt.Client(**broker_params(url), timeout=10) as client:
        pacer = Pacer(rate)
        for i, row in enumerate(rows):
            await pacer.wait(i)
            await client.publish(topic, reading_payload(row), qos=qos, timeout=30)
            sent += 1
            if on_sent:
                on_sent(1)
    return sent


def _bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=err)


@sensors_app.command("replay")
def replay(
    file: Annotated[Path, typer.Argument(help="CSV with a header: a time column and a value column.")],
    learner_id: Annotated[str | None, typer.Option("--learner", help="UUID of the learner (gRPC; with --mqtt "
                                                                     "the bridge decides).")] = None,
    mqtt: Annotated[str | None, typer.Option("--mqtt", metavar="URL", help="Publish to this MQTT broker "
                                             "(mqtt://host:port) instead of streaming to the learner.")] = None,
    rate: Annotated[float | None, typer.Option(help="Readings per second (default 10).")] = None,
    fast: Annotated[bool, typer.Option("--as-fast-as-possible", help="Do not pace the readings.")] = False,
    sensor_id: Annotated[str | None, typer.Option("--sensor-id", help="Sensor id (default: the file name "
                                                                      "without extension).")] = None,
    time_column: Annotated[str, typer.Option(help="Column of the times (ISO 8601; without offset: UTC).")
                           ] = "timestamp",
    value_column: Annotated[str, typer.Option(help="Column of the values.")] = "power_kw",
    limit: Annotated[int | None, typer.Option(min=1, help="Replay only the first N readings.")] = None,
    target: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="gRPC target (default: the front "
                                               "door, MLMESH_TARGET).")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="gRPC: at most this many readings per Learn "
                                       "message.")] = 64,
    topic_prefix: Annotated[str, typer.Option(help="MQTT: readings go to <prefix>/<sensor_id>.")] = "mlmesh/sensors",
    org: Annotated[str | None, typer.Option("--org", help="Organization (default: MLMESH_ORG).")] = None,
) -> None:
    """Replay a CSV of timestamped readings into a learner (a Learn stream) or an MQTT broker."""
    if fast and rate is not None:
        raise typer.BadParameter("give --rate or --as-fast-as-possible, not both", param_hint="--rate")
    if rate is not None and rate <= 0:
        raise typer.BadParameter(f"must be positive, got {rate:g}", param_hint="--rate")
    if mqtt is None and not learner_id:
        raise typer.BadParameter("which learner learns the readings? (or --mqtt URL to publish to a broker)",
                                 param_hint="--learner")
    pace = None if fast else (rate or 10.0)
    if not file.is_file():
        err.print(f"[red]no such file[/red]: {file}")
        raise typer.Exit(2)
    try:
        total = check_csv(file, time_column, value_column, limit)
    except CsvError as exc:
        err.print(f"[red]bad CSV[/red]: {exc}")
        raise typer.Exit(2) from None
    sensor = sensor_id or file.stem
    rows = read_rows(file, time_column, value_column, limit)
    if mqtt is not None:
        _replay_mqtt(rows, total, mqtt, f"{topic_prefix.strip('/')}/{sensor}", pace)
    else:
        _replay_grpc(rows, total, learner_id, sensor, pace, batch, target, org)


def _replay_mqtt(rows: Iterator[Row], total: int, url: str, topic: str, rate: float | None) -> None:
    import aiomqtt

    try:
        broker_params(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mqtt") from None
    with _bar() as bar:
        task = bar.add_task(f"publish to {topic}", total=total, status="")
        try:
            sent = asyncio.run(replay_mqtt(rows, url=url, topic=topic, rate=rate,
                                           on_sent=lambda n: bar.advance(task, n)))
        except aiomqtt.MqttError as exc:
            bar.stop()
            err.print(f"[red]MQTT broker {url}[/red]: {exc}")
            err.print("is the broker running and reachable? `make mosquitto` installs one (Debian's mosquitto)")
            raise typer.Exit(1) from None
    console.print(f"published {sent} readings on {topic} (QoS 1, acknowledged by the broker)")


def _replay_grpc(rows: Iterator[Row], total: int, learner_id: str, sensor: str, rate: float | None, batch: int,
                 target: str | None, org: str | None) -> None:
    s = session.load_settings()
    target = target or s.front_door
    token = session.bearer_token(s, org or s.org)
    with _bar() as bar:
        task = bar.add_task(f"learn {sensor}", total=total, status="")

        def on_ack(ack) -> None:
            bar.update(task, status=f"learned {ack.observations_learned}, running loss {ack.running_loss:.4g}")

        try:
            learner, result = asyncio.run(replay_grpc(rows, target=target, token=token, learner_id=learner_id,
                                                      sensor_id=sensor, rate=rate, batch=batch,
                                                      on_sent=lambda n: bar.advance(task, n), on_ack=on_ack))
        except grpc.RpcError as exc:
            bar.stop()
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                err.print(f"[red]NOT_FOUND[/red]: {exc.details()}")
                err.print(f"no learner {learner_id} at {target}: check --learner (the learner's UUID) and --target")
                raise typer.Exit(1) from None
            raise session.fail(exc) from None
    last = result.last
    console.print(f"sent {result.sent} readings of {sensor} in {result.messages} messages to learner "
                  f"{learner.learner_id} ({learner.display_name})")
    if last is None:
        console.print("no acknowledgement received")
        raise typer.Exit(1)
    console.print(f"learner: {last.observations_learned} training pairs learned in total "
                  f"({last.observations_learned - learner.observations_learned} from this replay), "
                  f"{last.pending} pending (waiting for their target or a micro-batch); running loss {last.running_loss:.6g}, validation loss "
                  f"{last.validation_loss:.6g}")
    if result.saved:
        table = Table("version", "model_id", "validation loss", "parent", title="saved versions")
        for v in result.saved:
            table.add_row(str(v.version), v.model_id, f"{v.validation_loss:.6g}", v.parent_model_id or "-")
        console.print(table)
    else:
        console.print("no model version saved during the replay")


if __name__ == "__main__":
    sensors_app()
