"""`python -m servers.learner.mqtt_bridge`: read the settings, configure logging, run the bridge
until SIGTERM/SIGINT. Exit status 0 after a clean stop, 1 for bad settings, 2 for a learner the bridge
cannot feed."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from servers.learner.mqtt_bridge.bridge import serve
from servers.learner.mqtt_bridge.settings import MqttBridgeSettings


def main() -> None:
    from servers.common.observability import configure_logging

    try:
        settings = MqttBridgeSettings()
    except ValidationError as exc:
        problems = "; ".join(f"MLMESH_MQTT_BRIDGE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in exc.errors())
        raise SystemExit(f"mqtt bridge: bad settings: {problems}") from None
    configure_logging(settings.log_level, "mqtt-bridge")
    for noisy in ("mlmesh.mqtt_bridge.mqtt", "grpc", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    raise SystemExit(asyncio.run(serve(settings)))


if __name__ == "__main__":
    main()
