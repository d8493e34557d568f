"""Programs that use the service rather than make it up: the replay model pool (the demo and
test pool), the routing-quality benchmark, the service's speed and load benchmarks, and
offline evaluation of logged traffic. The service never imports them, except that it mounts
the replay pool when no pool file is given."""
