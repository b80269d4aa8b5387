"""Hand-written code of the Display context; stormgen never overwrites it."""
