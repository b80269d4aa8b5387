"""Hand-written code of the Ordering context; stormgen never overwrites it."""
