"""Loss functions: pure functions of tensors returning ``(loss, dict_of_floats)``; no optimizer, no module state."""
