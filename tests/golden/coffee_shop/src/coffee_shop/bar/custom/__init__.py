"""Hand-written code of the Bar context; stormgen never overwrites it."""
