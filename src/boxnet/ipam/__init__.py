"""Address management: pure functions over subnets, ranges and taken addresses."""
