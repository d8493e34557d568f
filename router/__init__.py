"""The router service: wires signals, store and learner into the request lifecycle."""
