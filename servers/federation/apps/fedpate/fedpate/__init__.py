"""FedPATE on Flower's Message API: teachers (ClientApps) train on private shards and vote; the
ServerApp labels its public queries by noisy votes and trains the student on them."""
