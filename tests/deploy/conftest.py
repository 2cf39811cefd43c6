"""tests/deploy/images builds on images `make images` made and runs them with podman: minutes, not
seconds, so it runs under `make test-images` (MLMESH_TEST_IMAGES=1) and is not collected by `make test`."""

import os

collect_ignore = [] if os.environ.get("MLMESH_TEST_IMAGES") == "1" else ["images"]
