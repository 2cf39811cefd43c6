"""`mlmesh sensors`: replay a CSV of timestamped readings into a learner, live-paced or flat out.

    mlmesh sensors replay power.csv --learner <uuid> --rate 50               # a Learn stream (gRPC)
    mlmesh sensors replay power.csv --mqtt mqtt://127.0.0.1:1883 --as-fast-as-possible

Over gRPC (default, through the front door or `--target`) it opens one Learn stream, writes the
readings in batches (`--batch` per message) and reads the acknowledgements as they come; at the end
it prints what the learner learned, its losses and any model versions it saved. With `--mqtt` it
publishes each reading as `{"time": "<RFC 3339>", "value": <number>}` on `<prefix>/<sensor_id>`
(QoS 1, in order), where the MQTT bridge (servers/learner/mqtt_bridge/) picks them up. The formats
(CSV, MQTT messages, broker URLs) are clients/sensorformat.py, described in docs/sensors.md. The CSV
is checked completely before anything is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from clients import session
from mlmesh.client.errors import MlmeshError, NotFound
from clients.sensorformat import (CsvError, Row, broker_params, check_csv, observation, reading_payload,
                                  read_rows, sensor_topic)

sensors_app = typer.Typer(help="Sensor readings: replay a CSV into a learner over gRPC or through an MQTT "
                               "broker.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # errors stay one line each, for grep and logs


@sensors_app.callback()
def _group() -> None:
    """Sensor readings for online learners (power-forecast transformer)."""


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
    """Streams `rows` into one Learn stream of the asyncio SDK; returns (the learner before,
    LearnResult). A message carries what is due (at most `batch` readings), so a paced replay sends
    each reading as it comes and a flat-out one fills its messages. Raises MlmeshError."""
    from mlmesh.learner.v1 import learner_service_pb2 as pb

    import mlmesh.aio

    result = LearnResult()
    queue: asyncio.Queue[Row | None] = asyncio.Queue(maxsize=4 * batch)

    async def pace() -> None:
        pacer = Pacer(rate)
        for i, row in enumerate(rows):
            await pacer.wait(i)
            await queue.put(row)
        await queue.put(None)

    async def requests():
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
                yield pb.LearnRequest(learner_id=learner_id, observations=[observation(r, sensor_id) for r in taken])
                result.sent += len(taken)
                result.messages += 1
                if on_sent:
                    on_sent(len(taken))

    async with mlmesh.aio.Client(target, token=token) as client:
        learner = await client.learners.get(learner_id)
        pacing = asyncio.create_task(pace())
        try:
            async for ack in client.learners.learn(learner_id, requests()):
                result.last = ack
                if ack.HasField("saved"):
                    result.saved.append(ack.saved)
                if on_ack:
                    on_ack(ack)
            await pacing
        finally:
            pacing.cancel()
            await asyncio.gather(pacing, return_exceptions=True)
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
        _replay_mqtt(rows, total, mqtt, sensor_topic(topic_prefix, sensor), pace)
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
        except MlmeshError as exc:
            bar.stop()
            if isinstance(exc, NotFound):
                err.print(f"[red]NOT_FOUND[/red]: {exc.message}")
                err.print(f"no learner {learner_id} at {target}: check --learner (the learner's UUID) and --target")
                raise typer.Exit(session.EXIT_FAILED) from None
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
