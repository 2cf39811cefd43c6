"""The grid demand-shifting environment (seed 2.2), usable without the Optimizer server:

    import gymnasium, servers.optimizer.gridshift
    env = gymnasium.make("mlmesh/GridShift-v0", days=range(0, 150))

It needs pandapower, simbench and gymnasium (the `.venv-rl` virtualenv, `make rl-venv`).
"""

import gymnasium

ENV_ID = "mlmesh/GridShift-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="servers.optimizer.gridshift.env:GridShiftEnv")
