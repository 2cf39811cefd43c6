import sys

from servers.optimizer.worker.train import main

sys.exit(main())
