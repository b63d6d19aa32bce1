"""Pure building blocks shared by every layer: errors, config helpers, metrics, logging."""
